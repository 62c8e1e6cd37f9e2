"""Model prices: the built-in table and the ``MODEL_PRICES`` syntax that adds to it."""

from __future__ import annotations

import re

# USD per million tokens (input, output) of common models, as their makers list them; a dated
# snapshot ("gpt-4o-mini-2024-07-18") is priced as its model. MODEL_PRICES adds or overrides.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}

Prices = tuple[tuple[str, float, float], ...]


def parse_prices(value: str) -> Prices:
    """``name=in/out;name=in/out`` (USD per million tokens); model names may hold ``:`` ``/``.

    Raises ``ValueError`` naming the entry that is not of that form.
    """
    prices: list[tuple[str, float, float]] = []
    for entry in (e.strip() for e in value.split(";")):
        if not entry:
            continue
        name, sep, price = entry.rpartition("=")
        parts = price.split("/")
        try:
            if not sep or not name.strip() or len(parts) != 2:
                raise ValueError(entry)
            low, high = float(parts[0]), float(parts[1])
            if low < 0 or high < 0:
                raise ValueError(entry)
        except ValueError:
            raise ValueError(
                f"{entry!r} is not name=input/output (USD per million tokens, "
                "e.g. gpt-4o-mini=0.15/0.60)"
            ) from None
        prices.append((name.strip(), low, high))
    return tuple(prices)


def price_of(model: str, extra: Prices = ()) -> tuple[float, float] | None:
    """USD per million (input, output) tokens of ``model``, or None when it is unknown."""
    table = {**DEFAULT_PRICES, **{name: (low, high) for name, low, high in extra}}
    if model in table:
        return table[model]
    undated = re.sub(r"-\d{4}-\d{2}-\d{2}$", "", model)
    return table.get(undated)
