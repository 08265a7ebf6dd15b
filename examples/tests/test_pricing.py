from pace import work
from decimal import Decimal

import pytest

from shop.pricing import line_total, with_vat


@pytest.mark.parametrize("quantity", range(12))
def test_line_total(quantity):
    total = line_total(Decimal("2.50"), quantity)
    assert total >= 0


def test_bulk_discount():
    assert line_total(Decimal("1.00"), 10) == Decimal("9.50")


def test_negative_quantity():
    with pytest.raises(ValueError):
        line_total(Decimal("1.00"), -1)


@pytest.mark.parametrize("rate", ["0.00", "0.07", "0.20", "0.25"])
def test_vat(rate):
    work(0.05)
    assert with_vat(Decimal("100"), Decimal(rate)) == Decimal(100) * (1 + Decimal(rate))


def test_rounding_table():
    """A slow table-driven test: the long tail of the suite."""
    work(2.5)
    for cents in range(1000):
        value = Decimal(cents) / 100
        assert with_vat(value, Decimal(0)) == value
