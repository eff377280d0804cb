"""How the model checks name a field and show a value in a message."""

from __future__ import annotations


def is_number(v) -> bool:
    """An int or float that converts to a float (no bool; ints beyond a float's range are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if isinstance(v, int):
        return abs(v) <= 2**1023
    return True


def or_default(value, default):
    """A field's value, ``default`` when it is absent or null (so an empty list where an object belongs is
    still caught)."""
    return default if value is None else value


def join_key(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def kind_of(v) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and not is_number(v):
        return "a number beyond a float's range"
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__) + ("" if isinstance(v, (dict, list)) else f" ({short_repr(v)})")


def short_repr(v, limit: int = 40) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def mib(n: int) -> str:
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:,.1f} MiB"
