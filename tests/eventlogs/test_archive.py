"""The raw archive: gzip members appended safely by concurrent processes, each batch readable on its own."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventlogs.services import archive

MOMENT = datetime(2024, 3, 24, 11, 25, tzinfo=UTC)


# One writer process, as a web worker is: its own interpreter (no state inherited from the test process).
WRITER = """
import json, sys, uuid
from datetime import UTC, datetime
import django
django.setup()
from eventlogs.services import archive
worker, moment = int(sys.argv[1]), datetime(2024, 3, 24, 11, 25, tzinfo=UTC)
written = []
for n in range(40):
    lines = [f'{{"worker": "{worker}", "n": "{n}", "i": "{i}"}}'.encode() for i in range(50 + n)]
    member = archive.append("lol", str(uuid.uuid4()), lines, moment, client=f"w{worker}")
    written.append((member.name, member.offset, member.length))
print(json.dumps(written))
"""


def test_concurrent_processes_append_whole_members(archive_dir: Path) -> None:
    env = {**os.environ, "EVENTLOG_ARCHIVE_DIR": str(archive_dir), "DJANGO_SETTINGS_MODULE": "core.settings"}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(worker)], env=env, stdout=subprocess.PIPE, text=True)
        for worker in range(4)
    ]
    outputs = [writer.communicate(timeout=300)[0] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0, 0]
    written = [tuple(entry) for output in outputs for entry in json.loads(output)]
    relative = f"{archive.partition('lol', MOMENT)}/{archive.FILE_NAME}"
    assert relative == "kind=lol/date=2024-03-24/hour=11/events.ndjson.gz"
    scanned = list(archive.scan_members(relative))
    assert len(scanned) == 160
    assert sorted((m.name, m.offset, m.length) for m, _ in scanned) == sorted(written)
    for member, lines in scanned:
        assert archive.read_member(member) == lines  # a batch is readable alone from (offset, length)
        workers = {line.split(b'"')[3] for line in lines}
        assert len(workers) == 1
        assert len(lines) >= 50
    with gzip.open(archive_dir / relative) as handle:  # plain gzip readers see one NDJSON stream
        assert len(handle.read().splitlines()) == sum(len(lines) for _, lines in scanned)


def test_a_corrupt_member_is_reported_not_skipped(archive_dir: Path) -> None:
    member = archive.append("ad", str(uuid.uuid4()), [b'{"a": "1"}'] * 10, MOMENT)
    path = archive_dir / member.path
    data = bytearray(path.read_bytes())
    data[-12] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"CRC|truncated|corrupt"):
        list(archive.scan_members(member.path))
