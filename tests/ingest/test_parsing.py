"""KIPRIS XML parsing on its own: envelopes of both families, odd shapes, dates, splitting, hostile bodies."""

from __future__ import annotations

from datetime import date

import pytest

from ingest.kipris.errors import KiprisError, PoisonedResponseError, TransientError
from ingest.kipris.parsing import parse_date, parse_envelope, split_classes, split_pipe, to_record


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20230405", date(2023, 4, 5)),
        ("1985/12/30 00:00:00", date(1985, 12, 30)),
        ("2023-04-05", date(2023, 4, 5)),
        ("20231345", None),
        ("", None),
        ("unknown", None),
    ],
)
def test_dates(raw: str, expected: date | None) -> None:
    assert parse_date(raw) == expected


def test_multi_valued_fields() -> None:
    assert split_pipe("A61K 8/02|A61K 8/9789") == ["A61K 8/02", "A61K 8/9789"]
    assert split_pipe("한동철 | 대한민국(관리부서 …)") == ["한동철", "대한민국(관리부서 …)"]
    assert split_classes("16 09 41") == ["16", "09", "41"]
    assert split_classes("16|09") == ["16", "09"]


def test_total_count_beside_or_inside_body() -> None:
    header = b"<response><header><resultCode>00</resultCode></header>"
    beside = header + b"<body><items/></body><count><totalCount>7</totalCount></count></response>"
    inside = header + b"<body><totalCount>9</totalCount><items/></body></response>"
    assert parse_envelope(beside).total == 7
    assert parse_envelope(inside).total == 9


def test_single_row_and_missing_fields_do_not_crash() -> None:
    body = (
        "<response><header><resultCode/><resultMsg/></header><body><items>"
        "<TotalSearchCount>1</TotalSearchCount>"
        "<TradeMarkInfo><ApplicationNumber>4020190000011</ApplicationNumber><Title> </Title>"
        '<NewField attr="x">값</NewField></TradeMarkInfo></items></body></response>'
    ).encode()
    envelope = parse_envelope(body)
    assert envelope.total == 1
    record = to_record("trademark", envelope.rows[0])
    assert record is not None
    assert record.fields["title"] == ""  # a lone space is empty
    assert record.fields["application_date"] is None
    assert record.raw["NewField"] == {"@attr": "x", "#text": "값"}


def test_success_yn_is_ignored_only_result_code_counts() -> None:
    body = (
        b"<response><header><successYN>Y</successYN><resultCode>10</resultCode>"
        b"<resultMsg>INVALID_REQUEST_PARAMETER_ERROR.</resultMsg></header></response>"
    )
    with pytest.raises(KiprisError, match="resultCode 10"):
        parse_envelope(body)


def test_unknown_result_code_is_surfaced_not_retried() -> None:
    body = b"<response><header><resultCode>99</resultCode><resultMsg>NEW ERROR</resultMsg></header></response>"
    with pytest.raises(KiprisError) as raised:
        parse_envelope(body)
    assert not isinstance(raised.value, TransientError)


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><response>&b;</response>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><response>&x;</response>',
    ],
)
def test_entity_declarations_are_refused(body: bytes) -> None:
    with pytest.raises(PoisonedResponseError):
        parse_envelope(body)


@pytest.mark.parametrize("body", [b"", b"<html>", b"not xml at all", b"<other/>", b"<response><header>"])
def test_broken_bodies_are_transient(body: bytes) -> None:
    with pytest.raises(TransientError):
        parse_envelope(body)
