"""Stock kept in a small SQLite catalogue."""

from __future__ import annotations

import sqlite3
from decimal import Decimal


class Inventory:
    def __init__(self, path: str = ":memory:") -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS items (sku TEXT PRIMARY KEY, price TEXT, stock INT)")

    def add(self, sku: str, price: Decimal, stock: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO items VALUES (?, ?, ?)", (sku, str(price), stock))

    def price(self, sku: str) -> Decimal:
        row = self.db.execute("SELECT price FROM items WHERE sku = ?", (sku,)).fetchone()
        if row is None:
            raise KeyError(sku)
        return Decimal(row[0])

    def take(self, sku: str, quantity: int) -> int:
        (stock,) = self.db.execute("SELECT stock FROM items WHERE sku = ?", (sku,)).fetchone()
        if quantity > stock:
            raise ValueError(f"only {stock} of {sku} left")
        self.db.execute("UPDATE items SET stock = ? WHERE sku = ?", (stock - quantity, sku))
        return stock - quantity

    def close(self) -> None:
        self.db.close()
