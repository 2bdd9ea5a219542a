"""The serial line protocol: pure parse/format functions, no I/O (docs/serial-protocol.md).

A frame is an ASCII line `$<tag>,<field>,...*CK` ending in CRLF, where CK is two hex digits: the XOR of
every byte between `$` and `*` (NMEA 0183's checksum). The device sends one `$R` frame per sensor per
minute; the bridge sends `$A` (alerts), `$S`…`$E` (the server frame) back.

Sites whose devices speak another ASCII layout configure a `FrameLayout` (tag, separator, field order,
time format, time zone, checksum on/off) through settings instead of forking this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

FRAME_START = b"$"
CHECKSUM_MARK = b"*"
LINE_END = b"\r\n"
DEFAULT_TIME_FORMAT = "%y%m%d%H%M"
READING_FIELDS = ("sensor", "ts", "flow", "pressure", "status")
# A frame longer than this is garbage (a real $R frame is ~40 bytes); the line buffer drops it.
MAX_FRAME_BYTES = 256


class FrameError(ValueError):
    """A frame that cannot become a reading; `result` is the label it is counted under."""

    result = "malformed"

    def __init__(self, message: str, raw: bytes = b"") -> None:
        super().__init__(message)
        self.raw = raw


class FramingError(FrameError):
    result = "bad_framing"


class ChecksumError(FrameError):
    result = "bad_checksum"


class FieldCountError(FrameError):
    result = "bad_field_count"


class NumberError(FrameError):
    result = "bad_number"


class OutOfRangeError(FrameError):
    result = "out_of_range"


class UnknownSensorError(FrameError):
    result = "unknown_sensor"


class UnexpectedTagError(FrameError):
    result = "unexpected_tag"


FRAME_RESULTS = ("ok", *(cls.result for cls in FrameError.__subclasses__()))


@dataclass(frozen=True, slots=True)
class FrameReading:
    """One parsed `$R` frame: a sensor's minute (ts is timezone-aware UTC)."""

    sensor: str
    ts: datetime
    flow: float
    pressure: float
    status: int


@dataclass(frozen=True, slots=True)
class Ranges:
    """The physical range of a sensor's two metrics, inclusive."""

    flow_min: float
    flow_max: float
    pressure_min: float
    pressure_max: float


@dataclass(frozen=True)
class FrameLayout:
    """How a site's devices lay out a reading frame. The defaults are pipewatch's own protocol."""

    tag: str = "R"
    separator: str = ","
    fields: tuple[str, ...] = READING_FIELDS
    time_format: str = DEFAULT_TIME_FORMAT
    time_zone: str = "UTC"
    checksum: bool = True

    def __post_init__(self) -> None:
        if sorted(self.fields) != sorted(READING_FIELDS):
            raise ValueError(f"a frame layout names each of {READING_FIELDS} once, got {self.fields}")
        ZoneInfo(self.time_zone)  # fails loudly on an unknown zone


DEFAULT_LAYOUT = FrameLayout()


def checksum(body: bytes) -> int:
    """NMEA 0183 checksum: XOR of every byte of `body` (the bytes between `$` and `*`)."""
    value = 0
    for byte in body:
        value ^= byte
    return value


def wrap(body: str) -> bytes:
    """`body` as a complete frame: `$body*CK\\r\\n`."""
    raw = body.encode("ascii")
    return b"$" + raw + b"*" + f"{checksum(raw):02X}".encode() + LINE_END


def split_frame(line: bytes, *, verify_checksum: bool = True, separator: str = ",") -> list[str]:
    """A frame line (with or without CRLF) -> its fields, tag first. Raises FramingError/ChecksumError."""
    line = line.strip()
    if not line.startswith(FRAME_START):
        raise FramingError("frame does not start with '$'", line)
    star = line.rfind(CHECKSUM_MARK)
    if verify_checksum:
        if star < 0 or len(line) - star != 3:
            raise FramingError("frame does not end with '*' and two hex digits", line)
        try:
            sent = int(line[star + 1 :], 16)
        except ValueError:
            raise ChecksumError("checksum is not two hex digits", line) from None
        body = line[1:star]
        if checksum(body) != sent:
            raise ChecksumError(f"checksum {sent:02X} != computed {checksum(body):02X}", line)
    else:
        body = line[1:star] if star >= 0 else line[1:]
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise FramingError("frame is not ASCII", line) from None
    return text.split(separator)


@lru_cache(maxsize=4096)
def _parse_minute(text: str, time_format: str, time_zone: str) -> datetime:
    """Device time -> aware UTC minute. Cached: every sensor reports the same minute."""
    local = datetime.strptime(text, time_format)  # noqa: DTZ007 - the zone is attached below
    # strptime is lenient ("26030209" parses as 2026-03-02 00:09): only the canonical spelling is a time.
    if local.strftime(time_format) != text:
        raise ValueError(f"timestamp {text!r} is not in the canonical {time_format} form")
    return local.replace(second=0, microsecond=0, tzinfo=_zone(time_zone)).astimezone(UTC)


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


def _finite(text: str, what: str, raw: bytes) -> float:
    try:
        value = float(text)
    except ValueError:
        raise NumberError(f"{what} {text!r} is not a number", raw) from None
    if not math.isfinite(value):
        raise NumberError(f"{what} {text!r} is not finite", raw)
    return value


def parse_frame(line: bytes, layout: FrameLayout = DEFAULT_LAYOUT) -> FrameReading:
    """One reading frame -> FrameReading, or a FrameError subclass naming what is wrong.

    Checks the frame itself (framing, checksum, field count, numbers). Whether the sensor exists and the
    values are physically possible needs the sensor table: see `validate`.
    """
    fields = split_frame(line, verify_checksum=layout.checksum, separator=layout.separator)
    if fields[0] != layout.tag:
        raise UnexpectedTagError(f"tag {fields[0][:8]!r} is not {layout.tag!r}", line)
    if len(fields) != len(layout.fields) + 1:
        raise FieldCountError(f"{len(fields) - 1} fields, expected {len(layout.fields)}", line)
    named = dict(zip(layout.fields, fields[1:], strict=True))
    sensor = named["sensor"]
    if len(sensor) != 3 or not sensor.isdigit():
        raise NumberError(f"sensor code {sensor!r} is not 3 digits", line)
    try:
        ts = _parse_minute(named["ts"], layout.time_format, layout.time_zone)
    except ValueError:
        raise NumberError(f"timestamp {named['ts']!r} does not match {layout.time_format}", line) from None
    status_text = named["status"]
    if not status_text.isdigit() or len(status_text) > 4:
        raise NumberError(f"status {status_text!r} is not a small number", line)
    return FrameReading(
        sensor=sensor,
        ts=ts,
        flow=_finite(named["flow"], "flow", line),
        pressure=_finite(named["pressure"], "pressure", line),
        status=int(status_text),
    )


def validate(reading: FrameReading, ranges: Ranges | None) -> None:
    """Raise UnknownSensorError (no ranges: not registered) or OutOfRangeError for impossible values."""
    if ranges is None:
        raise UnknownSensorError(f"sensor {reading.sensor} is not registered")
    if not ranges.flow_min <= reading.flow <= ranges.flow_max:
        raise OutOfRangeError(
            f"sensor {reading.sensor} flow {reading.flow} outside [{ranges.flow_min}, {ranges.flow_max}]"
        )
    if not ranges.pressure_min <= reading.pressure <= ranges.pressure_max:
        raise OutOfRangeError(
            f"sensor {reading.sensor} pressure {reading.pressure} "
            f"outside [{ranges.pressure_min}, {ranges.pressure_max}]"
        )


def format_minute(ts: datetime, layout: FrameLayout = DEFAULT_LAYOUT) -> str:
    """An aware datetime as the device's minute text (in the layout's time zone)."""
    if ts.tzinfo is None:
        raise ValueError("frame timestamps must be timezone-aware")
    return ts.astimezone(_zone(layout.time_zone)).strftime(layout.time_format)


def _number(value: float) -> str:
    """Numbers on the wire: at most 3 decimals, no exponent, no trailing zeros beyond one."""
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def format_reading_frame(reading: FrameReading, layout: FrameLayout = DEFAULT_LAYOUT) -> bytes:
    """What a device sends (the simulator uses it): the reading in the layout's field order."""
    values = {
        "sensor": reading.sensor,
        "ts": format_minute(reading.ts, layout),
        "flow": _number(reading.flow),
        "pressure": _number(reading.pressure),
        "status": f"{reading.status:02d}",
    }
    body = layout.separator.join([layout.tag, *(values[name] for name in layout.fields)])
    if layout.checksum:
        return wrap(body)
    return b"$" + body.encode("ascii") + LINE_END


def _flags(flags: str, what: str) -> str:
    if not flags or any(flag not in "01" for flag in flags):
        raise ValueError(f"{what} flags must be one 0/1 digit per method, got {flags!r}")
    return flags


def _code(sensor: str) -> str:
    if len(sensor) != 3 or not sensor.isdigit():
        raise ValueError(f"sensor code {sensor!r} is not 3 digits")
    return sensor


def format_alert_frame(
    sensor: str, minute: datetime, flow_flags: str, pressure_flags: str, layout: FrameLayout = DEFAULT_LAYOUT
) -> bytes:
    """`$A,<sensor>,<YYMMDDhhmm>,<flow flags>,<pressure flags>*CK`: one flag digit per detection method."""
    flags = f"{_flags(flow_flags, 'flow')},{_flags(pressure_flags, 'pressure')}"
    body = f"A,{_code(sensor)},{format_minute(minute, layout)},{flags}"
    return wrap(body)


@dataclass(frozen=True, slots=True)
class ServerRow:
    """One row of the server frame: a stored minute and the predictions for it (0 except at the hour)."""

    sensor: str
    ts: datetime
    flow: float
    pressure: float
    predicted_flow: float = 0.0
    predicted_pressure: float = 0.0
    # One 0/1 digit per detection method, as in the alert frame (flow: system, value, predict, night;
    # pressure: system, value, predict); all 0 for a minute detection has not flagged.
    flow_flags: str = "0000"
    pressure_flags: str = "000"


def format_server_frame(rows: Sequence[ServerRow], layout: FrameLayout = DEFAULT_LAYOUT) -> list[bytes]:
    """The server frame: one `$S` line per row, closed by `$E,<rows>`."""
    lines = [
        wrap(
            f"S,{_code(row.sensor)},{format_minute(row.ts, layout)},{_number(row.flow)},{_number(row.pressure)},"
            f"{_number(row.predicted_flow)},{_number(row.predicted_pressure)},"
            f"{_flags(row.flow_flags, 'flow')},{_flags(row.pressure_flags, 'pressure')}"
        )
        for row in rows
    ]
    lines.append(wrap(f"E,{len(rows)}"))
    return lines


@dataclass(frozen=True, slots=True)
class ForecastRow:
    """One 7-day forecast row in the seed layout: `<sensor> <YYMMDD from> <YYMMDD to> <code> <flow> <pressure>`."""

    sensor: str
    start: date
    end: date
    code: int
    flow: float
    pressure: float


def format_forecast_rows(rows: Iterable[ForecastRow]) -> list[str]:
    """The device's whitespace-separated forecast rows, one string per row (no line end)."""
    return [
        f"{_code(row.sensor)} {row.start:%y%m%d} {row.end:%y%m%d} {row.code} "
        f"{_number(row.flow)} {_number(row.pressure)}"
        for row in rows
    ]


def forecast_lines(rows: Iterable[ForecastRow]) -> list[bytes]:
    """The forecast rows as lines on the wire (ASCII, CRLF; no `$`/checksum: the device's layout has none)."""
    return [text.encode("ascii") + LINE_END for text in format_forecast_rows(rows)]


class LineBuffer:
    """Splits a byte stream into lines; a partial line waits for its end, oversize garbage is dropped.

    Chunked reads plus this buffer replace pyserial's readline(), which reads one byte per system call
    (~1,600 lines/s at 87% of a core against ~426,000 lines/s; DESIGN.md).
    """

    def __init__(self, max_line: int = MAX_FRAME_BYTES) -> None:
        self.max_line = max_line
        self._pending = b""
        self.dropped_bytes = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """Complete lines (without CR/LF, empty ones skipped) found in what has arrived so far."""
        data = self._pending + chunk
        parts = data.split(b"\n")
        self._pending = parts.pop()
        if len(self._pending) > self.max_line:
            # No newline in sight: keep only the tail after the last frame start, or nothing.
            start = self._pending.rfind(FRAME_START)
            keep = self._pending[start:] if start >= 0 and len(self._pending) - start <= self.max_line else b""
            self.dropped_bytes += len(self._pending) - len(keep)
            self._pending = keep
        lines = []
        for part in parts:
            line = part.rstrip(b"\r")
            if not line:
                continue
            if len(line) > self.max_line:
                self.dropped_bytes += len(line)
                continue
            lines.append(line)
        return lines

    def reset(self) -> None:
        """Forget a partial line (the port closed: its end will never come)."""
        self._pending = b""
