"""Template filters of the console: ages, durations and numbers as an operator reads them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template

register = template.Library()


@register.filter
def age(value: timedelta | None) -> str:
    """42 s, 5 min, 3 h 10 min, 2 d 4 h; "never" for None."""
    if value is None:
        return "never"
    seconds = max(0, int(value.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


@register.filter
def seconds(value: float | None) -> str:
    return "-" if value is None else age(timedelta(seconds=value))


@register.filter
def num(value: Any, digits: int = 2) -> str:
    """A number with `digits` decimals, "-" when missing."""
    if value is None:
        return "-"
    try:
        return f"{float(value):.{int(digits)}f}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def lookup(mapping: dict[str, Any] | None, key: str) -> Any:
    return (mapping or {}).get(key)
