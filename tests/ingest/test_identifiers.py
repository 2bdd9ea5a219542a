"""Business and corporate registration numbers: normalised to the API's form, bad ones refused with a reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.identifiers import (
    InvalidNumberError,
    business_check_digit,
    normalize_applicant_number,
    normalize_business_number,
    normalize_corporate_number,
)


@pytest.mark.parametrize("raw", ["124-81-00998", "1248100998", " 124 81 00998 ", "124.81.00998"])
def test_business_number_forms(raw: str) -> None:
    assert normalize_business_number(raw) == "124-81-00998"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("124-81-00997", "check digit"),
        ("124-81-0099", "10 digits, not 9"),
        ("12481009981", "10 digits, not 11"),
        ("124-8I-00998", "only digits"),
        (
            "\uff11\uff12\uff14\uff18\uff11\uff10\uff10\uff19\uff19\uff18",
            "only digits",
        ),  # full-width digits are not accepted silently
    ],
)
def test_bad_business_numbers_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumberError, match=reason):
        normalize_business_number(raw)


def test_corporate_numbers() -> None:
    assert normalize_corporate_number("1101110346901") == "110111-0346901"
    with pytest.raises(InvalidNumberError, match="check digit"):
        normalize_corporate_number("110111-0346902")
    with pytest.raises(InvalidNumberError, match="13 digits"):
        normalize_corporate_number("110111-034690")


def test_applicant_number_is_opaque_twelve_digits() -> None:
    assert normalize_applicant_number("119980018012") == "119980018012"
    with pytest.raises(InvalidNumberError):
        normalize_applicant_number("11998001801")


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_every_business_number_with_its_check_digit_is_valid(first_nine: str) -> None:
    number = first_nine + str(business_check_digit(first_nine))
    assert normalize_business_number(number).replace("-", "") == number
    wrong = first_nine + str((business_check_digit(first_nine) + 1) % 10)
    with pytest.raises(InvalidNumberError):
        normalize_business_number(wrong)
