"""sensors.protocol: checksum against NMEA vectors, every frame error type, formats, the line buffer."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors import protocol
from sensors.protocol import (
    ChecksumError,
    FieldCountError,
    ForecastRow,
    FrameError,
    FrameLayout,
    FrameReading,
    FramingError,
    LineBuffer,
    NumberError,
    OutOfRangeError,
    Ranges,
    ServerRow,
    UnexpectedTagError,
    UnknownSensorError,
)

SEOUL = FrameLayout(time_zone="Asia/Seoul")
RANGES = Ranges(0, 1000, 0, 16)

# Published NMEA 0183 sentences with their checksums.
NMEA_VECTORS = [
    b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",
    b"$GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,*76",
    b"$GPRMC,092750.000,A,5321.6802,N,00630.3372,W,0.02,31.66,280511,,,A*43",
    b"$GPGSA,A,3,10,07,05,02,29,04,08,13,,,,,1.72,1.03,1.38*0A",
]


@pytest.mark.parametrize("sentence", NMEA_VECTORS)
def test_checksum_matches_published_nmea_sentences(sentence: bytes) -> None:
    body, sent = sentence[1:].split(b"*")
    assert protocol.checksum(body) == int(sent, 16)
    assert protocol.wrap(body.decode()) == sentence + b"\r\n"


def test_parses_a_reading_frame_in_device_local_time() -> None:
    frame = protocol.wrap("R,007,2603020915,123.4,4.56,03")
    reading = protocol.parse_frame(frame, SEOUL)
    assert reading == FrameReading("007", datetime(2026, 3, 2, 0, 15, tzinfo=UTC), 123.4, 4.56, 3)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"R,007,2603020915,1,2,00*00", FramingError),
        (b"$R,007,2603020915,1,2,00", FramingError),
        (b"$R,007,2603020915,1,2,00*ZZ", ChecksumError),
        (b"$R,007,2603020915,1,2,00*00", ChecksumError),
        (protocol.wrap("R,007,2603020915,1,2"), FieldCountError),
        (protocol.wrap("R,007,2603020915,1,2,00,9"), FieldCountError),
        (protocol.wrap("R,007,2603020915,abc,2,00"), NumberError),
        (protocol.wrap("R,007,2603020915,nan,2,00"), NumberError),
        (protocol.wrap("R,007,2603020915,1,inf,00"), NumberError),
        (protocol.wrap("R,07,2603020915,1,2,00"), NumberError),
        (protocol.wrap("R,007,2613020915,1,2,00"), NumberError),
        (protocol.wrap("R,007,26030209,1,2,00"), NumberError),
        (protocol.wrap("R,007,2603020915,1,2,x1"), NumberError),
        (protocol.wrap("A,007,2603020915,01,10"), UnexpectedTagError),
        (b"$R,007,\xff\xfe*" + b"%02X" % protocol.checksum(b"R,007,\xff\xfe"), FramingError),
    ],
)
def test_every_malformed_frame_type_is_a_typed_error(frame: bytes, error: type[FrameError]) -> None:
    with pytest.raises(error) as raised:
        protocol.parse_frame(frame, SEOUL)
    assert raised.value.result in protocol.FRAME_RESULTS
    assert raised.value.raw


def test_validate_rejects_unknown_sensors_and_impossible_values() -> None:
    reading = protocol.parse_frame(protocol.wrap("R,007,2603020915,1200,4.5,00"), SEOUL)
    with pytest.raises(UnknownSensorError):
        protocol.validate(reading, None)
    with pytest.raises(OutOfRangeError, match="flow"):
        protocol.validate(reading, RANGES)
    protocol.validate(reading, Ranges(0, 2000, 0, 16))
    low_pressure = protocol.parse_frame(protocol.wrap("R,007,2603020915,12,-0.5,00"), SEOUL)
    with pytest.raises(OutOfRangeError, match="pressure"):
        protocol.validate(low_pressure, RANGES)


def test_a_site_layout_is_configured_not_forked() -> None:
    """Semicolons, pressure before flow, seconds in the time stamp, no checksum."""
    layout = FrameLayout(
        tag="M",
        separator=";",
        fields=("ts", "sensor", "pressure", "flow", "status"),
        time_format="%Y%m%d%H%M%S",
        time_zone="UTC",
        checksum=False,
    )
    reading = protocol.parse_frame(b"$M;20260302091500;042;3.5;88.25;00\r\n", layout)
    assert reading == FrameReading("042", datetime(2026, 3, 2, 9, 15, tzinfo=UTC), 88.25, 3.5, 0)
    assert protocol.parse_frame(protocol.format_reading_frame(reading, layout), layout) == reading
    with pytest.raises(ValueError, match="names each of"):
        FrameLayout(fields=("sensor", "ts", "flow"))


def test_alert_frame_format() -> None:
    frame = protocol.format_alert_frame("003", datetime(2026, 3, 2, 0, 15, tzinfo=UTC), "0100", "001", SEOUL)
    assert frame.startswith(b"$A,003,2603020915,0100,001*")
    assert protocol.split_frame(frame) == ["A", "003", "2603020915", "0100", "001"]
    with pytest.raises(ValueError, match="flags"):
        protocol.format_alert_frame("003", datetime(2026, 3, 2, tzinfo=UTC), "0120", "0")
    with pytest.raises(ValueError, match="3 digits"):
        protocol.format_alert_frame("3", datetime(2026, 3, 2, tzinfo=UTC), "0", "0")


def test_server_frame_is_rows_closed_by_the_row_count() -> None:
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    rows = [
        ServerRow("003", at, 12.5, 4.0, 13.25, 3.9, "0100", "001"),
        ServerRow("003", at.replace(minute=1), 12.0, 4.1),
    ]
    lines = protocol.format_server_frame(rows, SEOUL)
    assert [protocol.split_frame(line) for line in lines] == [
        ["S", "003", "2603021000", "12.5", "4.0", "13.25", "3.9", "0100", "001"],
        ["S", "003", "2603021001", "12.0", "4.1", "0.0", "0.0", "0000", "000"],
        ["E", "2"],
    ]
    with pytest.raises(ValueError, match="flow flags"):
        protocol.format_server_frame([ServerRow("003", at, 1, 1, flow_flags="2")])


def test_forecast_rows_follow_the_device_layout() -> None:
    rows = [
        ForecastRow("003", date(2026, 3, 2), date(2026, 3, 3), 1, 120.5, 4.0),
        ForecastRow("003", date(2026, 3, 3), date(2026, 3, 4), 2, float("nan"), 4.125),
    ]
    assert protocol.format_forecast_rows(rows) == ["003 260302 260303 1 120.5 4.0", "003 260303 260304 2 nan 4.125"]
    assert protocol.forecast_lines(rows[:1]) == [b"003 260302 260303 1 120.5 4.0\r\n"]


def test_line_buffer_never_parses_a_partial_line_and_drops_oversize_garbage() -> None:
    buffer = LineBuffer(max_line=64)
    frame = protocol.wrap("R,007,2603020915,1,2,00")
    assert buffer.feed(frame[:10]) == []
    assert buffer.feed(frame[10:] + frame[:5]) == [frame.rstrip()]
    assert buffer.feed(b"x" * 500) == []
    assert buffer.dropped_bytes >= 500
    # The frame whose head was drowned in garbage is lost; the next complete one is intact.
    assert buffer.feed(b"\r\n" + frame) == [frame.rstrip()]
    buffer.feed(frame[:12])
    buffer.reset()
    assert buffer.feed(frame) == [frame.rstrip()]


# Two-digit years: strptime maps 69-99 to the 1900s, so the protocol covers 2000-2068 (docs/serial-protocol.md).
readings = st.builds(
    FrameReading,
    sensor=st.integers(0, 999).map(lambda n: f"{n:03d}"),
    ts=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2068, 12, 31), timezones=st.just(UTC)).map(
        lambda moment: moment.replace(second=0, microsecond=0)
    ),
    flow=st.floats(0, 10_000).map(lambda value: round(value, 3)),
    pressure=st.floats(0, 100).map(lambda value: round(value, 3)),
    status=st.integers(0, 99),
)


@given(readings)
def test_format_then_parse_is_the_identity(reading: FrameReading) -> None:
    assert protocol.parse_frame(protocol.format_reading_frame(reading, SEOUL), SEOUL) == reading


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_reading_or_a_typed_error(data: bytes) -> None:
    outcome: object
    try:
        outcome = protocol.parse_frame(data, SEOUL)
    except FrameError as exc:
        outcome = exc.result
    assert isinstance(outcome, FrameReading) or outcome in protocol.FRAME_RESULTS


@given(st.lists(st.binary(max_size=80), max_size=30))
def test_line_buffer_keeps_every_complete_line_whatever_the_chunking(chunks: list[bytes]) -> None:
    buffer = LineBuffer()
    data = b"".join(chunks)
    lines = [line for chunk in chunks for line in buffer.feed(chunk)]
    expected = [part.rstrip(b"\r") for part in data.split(b"\n")[:-1]]
    assert lines == [line for line in expected if line and len(line) <= protocol.MAX_FRAME_BYTES]
