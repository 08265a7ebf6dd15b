from decimal import Decimal

import pytest

from shop.orders import order_total

from pace import work


@pytest.mark.parametrize("quantity", [1, 2, 5, 10])
def test_order_total(inventory, warehouse, quantity):
    work(0.2)
    assert order_total(inventory, {"sku-20": quantity}) > Decimal(0)


class TestCheckout:
    def test_two_lines(self, inventory):
        work(0.3)
        assert order_total(inventory, {"sku-1": 1, "sku-2": 1}) == Decimal("5.98")

    def test_month_end_batch(self, inventory, warehouse):
        """The slowest test: a month of orders."""
        work(3.0)
        for day in range(30):
            order_total(inventory, {f"sku-{day + 10}": 1})

    def test_empty_order(self, inventory):
        assert order_total(inventory, {}) == Decimal("0.00")
