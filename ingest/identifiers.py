"""Korean business and corporate registration numbers: normalise to the API's hyphenated form, validate.

KIPRIS's applicant lookup expects `XXX-XX-XXXXX` (V3) and `XXXXXX-XXXXXXX` (V2). Users paste numbers with
or without hyphens, spaces or dots; both numbers carry a check digit, so a typo is caught here instead of
silently returning "no applicant" from the API.
"""

from __future__ import annotations

import re

BUSINESS_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)
CORPORATE_WEIGHTS = (1, 2) * 6


class InvalidNumberError(ValueError):
    """The number cannot be a valid registration number; the message says why."""


def _digits(raw: str, length: int, label: str) -> str:
    cleaned = re.sub(r"[\s.\-]", "", raw)
    if not cleaned.isdigit() or not cleaned.isascii():
        raise InvalidNumberError(f"{label} {raw!r} must contain only digits and hyphens")
    if len(cleaned) != length:
        raise InvalidNumberError(f"{label} {raw!r} must have {length} digits, not {len(cleaned)}")
    return cleaned


def business_check_digit(first_nine: str) -> int:
    """National Tax Service rule: weighted sum, plus the tens of 5 x the ninth digit."""
    digits = [int(char) for char in first_nine]
    total = sum(d * w for d, w in zip(digits, BUSINESS_WEIGHTS, strict=True)) + (digits[8] * 5) // 10
    return (10 - total % 10) % 10


def corporate_check_digit(first_twelve: str) -> int:
    """Court registry rule: alternating weights 1 and 2 over the first twelve digits."""
    total = sum(int(char) * w for char, w in zip(first_twelve, CORPORATE_WEIGHTS, strict=True))
    return (10 - total % 10) % 10


def normalize_business_number(raw: str) -> str:
    """`1248100998` or `124-81-00998` -> `124-81-00998`; raises InvalidNumberError with the reason."""
    digits = _digits(raw, 10, "business registration number")
    if business_check_digit(digits[:9]) != int(digits[9]):
        raise InvalidNumberError(f"business registration number {raw!r} fails its check digit")
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"


def normalize_corporate_number(raw: str) -> str:
    """`1101110346901` or `110111-0346901` -> `110111-0346901`; raises InvalidNumberError with the reason."""
    digits = _digits(raw, 13, "corporate number")
    if corporate_check_digit(digits[:12]) != int(digits[12]):
        raise InvalidNumberError(f"corporate number {raw!r} fails its check digit")
    return f"{digits[:6]}-{digits[6:]}"


def normalize_applicant_number(raw: str) -> str:
    """A 12-digit 특허고객번호, kept as an opaque string (its first digit does not give the type)."""
    return _digits(raw, 12, "applicant number")
