"""sensors.journal: the append-only spool survives restarts, replays in order, and empties itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sensors.journal import Journal, encode
from sensors.protocol import FrameReading

START = datetime(2026, 3, 2, tzinfo=UTC)


def readings(count: int, offset: int = 0) -> list[FrameReading]:
    return [
        FrameReading("001", START + timedelta(minutes=offset + i), (offset + i) + 1.0 / 3, 4.1, 0) for i in range(count)
    ]


def test_pending_commit_and_replay_after_reopen(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "b.spool")
    journal.append([encode(row, 1.5) for row in readings(10)])
    rows, end = journal.pending(4)
    assert [row for row, _ in rows] == readings(4)
    assert rows[0][1] == 1.5
    journal.commit(end, len(rows))
    assert journal.depth == 6
    journal.close()

    reopened = Journal(tmp_path / "b.spool")
    assert reopened.depth == 6
    rows, end = reopened.pending(100)
    assert [row for row, _ in rows] == readings(10)[4:]  # exact floats survive the text form
    reopened.commit(end, len(rows))
    assert reopened.depth == 0
    assert reopened.size == 0
    assert (tmp_path / "b.spool").stat().st_size == 0


def test_a_torn_last_line_is_cut_and_later_appends_are_read(tmp_path: Path) -> None:
    path = tmp_path / "b.spool"
    journal = Journal(path)
    journal.append([encode(row, 0.0) for row in readings(3)])
    journal.close()
    with path.open("ab") as raw:
        raw.write(b"001,17725")  # killed in the middle of a write
    reopened = Journal(path)
    assert reopened.depth == 3
    reopened.append([encode(row, 0.0) for row in readings(2, offset=3)])
    rows, _ = reopened.pending(100)
    assert [row for row, _ in rows] == readings(5)


def test_a_crash_between_offset_reset_and_truncate_only_replays(tmp_path: Path) -> None:
    path = tmp_path / "b.spool"
    journal = Journal(path)
    journal.append([encode(row, 0.0) for row in readings(3)])
    journal.close()
    (tmp_path / "b.spool.offset").write_text("0")
    again = Journal(path)
    rows, _ = again.pending(100)
    assert len(rows) == 3  # committed rows come back: the idempotent upsert stores them once


def test_an_offset_beyond_the_file_is_clamped(tmp_path: Path) -> None:
    path = tmp_path / "b.spool"
    Journal(path).append([encode(row, 0.0) for row in readings(2)])
    (tmp_path / "b.spool.offset").write_text("999999")
    journal = Journal(path)
    assert journal.depth == 0
    journal.append([encode(row, 0.0) for row in readings(1, offset=5)])
    assert [row for row, _ in journal.pending(10)[0]] == readings(1, offset=5)
