"""Orders: lines priced from the inventory."""

from __future__ import annotations

from decimal import Decimal

from .inventory import Inventory
from .pricing import line_total, with_vat


def order_total(inventory: Inventory, lines: dict[str, int]) -> Decimal:
    net = sum((line_total(inventory.price(sku), qty) for sku, qty in lines.items()), Decimal(0))
    for sku, qty in lines.items():
        inventory.take(sku, qty)
    return with_vat(net)
