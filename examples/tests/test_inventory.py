from decimal import Decimal

import pytest

from pace import work


def test_price(inventory):
    assert inventory.price("sku-3") == Decimal("3.99")


def test_unknown_sku(inventory):
    with pytest.raises(KeyError):
        inventory.price("nope")


@pytest.mark.parametrize("sku", [f"sku-{i}" for i in range(10)])
def test_take(inventory, sku):
    work(0.1)
    assert inventory.take(sku, 1) == 99


def test_stock_out(inventory):
    with pytest.raises(ValueError):
        inventory.take("sku-1", 1000)


def test_full_catalogue_scan(inventory, warehouse):
    work(1.5)
    assert sum(inventory.price(f"sku-{i}") for i in range(50)) > 0
