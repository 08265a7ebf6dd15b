"""Prices, discounts and taxes."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

VAT_RATE = Decimal("0.20")
BULK_THRESHOLD = 10
BULK_DISCOUNT = Decimal("0.05")


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    total = unit_price * quantity
    if quantity >= BULK_THRESHOLD:
        total -= total * BULK_DISCOUNT
    return money(total)


def with_vat(amount: Decimal, rate: Decimal = VAT_RATE) -> Decimal:
    return money(amount * (1 + rate))
