"""The raw archive (the data lake): gzip NDJSON files partitioned kind=/date=/hour= under EVENTLOG_ARCHIVE_DIR.

Each batch is appended as one gzip member (a multi-member file is plain gzip: zcat, gzip.open, Spark and
DuckDB read it whole), with the batch id in the member's FNAME header field and its receive time and
client (JSON) in FCOMMENT, so the file alone rebuilds its batches exactly (`scan_members`, used by replay
when the database lost them). Writers from any number of
processes append under an exclusive flock: the offset is read and the member written while holding it,
and a failed write is truncated away so a file never holds half a member.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import mmap
import os
import shutil
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings

FILE_NAME = "events.ndjson.gz"
GZIP_FNAME_FLAG, GZIP_FCOMMENT_FLAG = 0x08, 0x10
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class Member:
    path: str  # relative to the archive root
    offset: int
    length: int
    name: str = ""  # the batch id, from the FNAME header
    comment: str = ""  # {"received_at", "client"} as JSON, from the FCOMMENT header


def root() -> Path:
    return Path(settings.EVENTLOG_ARCHIVE_DIR)


def partition(kind: str, moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"kind={kind}/date={utc:%Y-%m-%d}/hour={utc:%H}"


def hour_of(path: str) -> datetime:
    """The UTC hour a relative archive path holds (kind=K/date=D/hour=H/...)."""
    parts = dict(part.split("=", 1) for part in Path(path).parts[:3])
    return datetime.strptime(f"{parts['date']} {parts['hour']}", "%Y-%m-%d %H").replace(tzinfo=UTC)


def gzip_member(name: str, comment: str, payload: bytes, level: int) -> bytes:
    flags = GZIP_FNAME_FLAG | GZIP_FCOMMENT_FLAG
    header = struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, flags, int(time.time()), 0, 255)
    header += name.encode("latin-1") + b"\0" + comment.encode("ascii", "backslashreplace") + b"\0"
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(payload) + deflate.flush()
    return header + body + struct.pack("<II", zlib.crc32(payload), len(payload) & 0xFFFFFFFF)


def append(kind: str, batch_id: str, lines: list[bytes], received_at: datetime, client: str = "") -> Member:
    """Write one batch as a gzip member of its hour's file; durable (fdatasync) before it returns."""
    payload = b"".join(line + b"\n" for line in lines)
    comment = json.dumps({"received_at": received_at.isoformat(), "client": client})
    member = gzip_member(batch_id, comment, payload, settings.EVENTLOG_ARCHIVE_GZIP_LEVEL)
    relative = f"{partition(kind, received_at)}/{FILE_NAME}"
    path = root() / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        offset = os.fstat(fd).st_size
        try:
            view = memoryview(member)
            while view:
                view = view[os.write(fd, view) :]
            os.fdatasync(fd)
        except OSError:
            os.ftruncate(fd, offset)
            raise
    finally:
        os.close(fd)  # closing releases the lock
    return Member(relative, offset, len(member), batch_id, comment)


def split_payload(payload: bytes) -> list[bytes]:
    """NDJSON lines without blank ones (a trailing newline, \\r\\n endings)."""
    return [line.rstrip(b"\r") for line in payload.split(b"\n") if line.strip()]


def read_member(member: Member) -> list[bytes]:
    """The lines of one archived batch."""
    with (root() / member.path).open("rb") as handle:
        handle.seek(member.offset)
        data = handle.read(member.length)
    return split_payload(zlib.decompress(data, wbits=16 + zlib.MAX_WBITS))


def _header(data: mmap.mmap, offset: int) -> tuple[int, str, str]:
    """Length of the gzip member header at `offset`, its FNAME and FCOMMENT (empty when absent)."""
    if data[offset : offset + 2] != b"\x1f\x8b":
        raise ValueError(f"no gzip member at byte {offset}")
    flags = data[offset + 3]
    cursor = offset + 10
    if flags & 0x04:  # FEXTRA
        cursor += 2 + int.from_bytes(data[cursor : cursor + 2], "little")
    name = ""
    if flags & GZIP_FNAME_FLAG:
        end = data.find(b"\0", cursor)
        name, cursor = data[cursor:end].decode("latin-1"), end + 1
    comment = ""
    if flags & GZIP_FCOMMENT_FLAG:
        end = data.find(b"\0", cursor)
        comment, cursor = data[cursor:end].decode("latin-1"), end + 1
    if flags & 0x02:  # FHCRC
        cursor += 2
    return cursor - offset, name, comment


def scan_members(relative: str) -> Iterator[tuple[Member, list[bytes]]]:
    """Every member of an archive file with its lines, in file order (the CRC of each is checked)."""
    path = root() / relative
    if path.stat().st_size == 0:
        return
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        offset = 0
        while offset < len(data):
            header, name, comment = _header(data, offset)
            inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            parts, cursor = [], offset + header
            while not inflate.eof:
                chunk = data[cursor : cursor + READ_CHUNK]
                if not chunk:
                    raise ValueError(f"{relative}: truncated member at byte {offset}")
                try:
                    parts.append(inflate.decompress(chunk))
                except zlib.error as exc:
                    raise ValueError(f"{relative}: member at byte {offset} is corrupt ({exc})") from None
                cursor += len(chunk)
            end = cursor - len(inflate.unused_data) + 8
            payload = b"".join(parts)
            crc, size = struct.unpack("<II", data[end - 8 : end])
            if crc != zlib.crc32(payload) or size != len(payload) & 0xFFFFFFFF:
                raise ValueError(f"{relative}: member at byte {offset} fails its CRC")
            yield Member(relative, offset, end - offset, name, comment), split_payload(payload)
            offset = end


def files(kind: str, start: datetime, end: datetime) -> list[str]:
    """Relative paths of the kind's archive files whose hour overlaps [start, end)."""
    found = []
    for path in sorted((root() / f"kind={kind}").glob(f"date=*/hour=*/{FILE_NAME}")):
        relative = str(path.relative_to(root()))
        hour = hour_of(relative)
        if hour + timedelta(hours=1) > start and hour < end:
            found.append(relative)
    return found


def sha256(relative: str) -> str:
    digest = hashlib.sha256()
    with (root() / relative).open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def delete_partition(relative: str) -> None:
    """Remove an hour's directory (the file and anything beside it)."""
    shutil.rmtree((root() / relative).parent, ignore_errors=True)
