from decimal import Decimal

import pytest

from shop.inventory import Inventory

from pace import work


@pytest.fixture(scope="session")
def warehouse():
    """An expensive session-wide resource: 0.3 s to start, 0.1 s to stop."""
    work(0.3)
    yield {"region": "eu"}
    work(0.1)


@pytest.fixture(scope="module")
def inventory():
    """A catalogue loaded once per module that uses it: 0.5 s."""
    work(0.5)
    inv = Inventory()
    for i in range(50):
        inv.add(f"sku-{i}", Decimal(i) + Decimal("0.99"), 100)
    yield inv
    inv.close()
