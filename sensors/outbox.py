"""The outbox: frames for the device, queued by any process, written to the port only by the bridge.

A Redis list (RPUSH here, read in order and trimmed after a successful write by the bridge), so a
frame queued while the bridge is down or the port is gone waits for it instead of being lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from core.redis import redis_client

from .protocol import format_alert_frame

OUTBOX_KEY = "pipewatch:sensors:outbox"
# The last frames written to the port, per sensor (the console's "frames sent to the device").
SENT_PREFIX = "pipewatch:sensors:sent-log:"
SENT_KEEP = 50


def queue_frames(frames: list[bytes]) -> None:
    """Append complete frames (with CRLF) to the outbox, in order. Raises redis.RedisError when Redis is down."""
    if frames:
        redis_client().rpush(OUTBOX_KEY, *frames)


def queue_alert_frame(sensor_code: str, minute: datetime, flow_flags: str, pressure_flags: str) -> None:
    """Queue `$A,<sensor>,<minute>,<flow flags>,<pressure flags>` (one 0/1 digit per detection method)."""
    from .settings import frame_layout

    queue_frames([format_alert_frame(sensor_code, minute, flow_flags, pressure_flags, frame_layout())])


# SET NX marks the slot and RPUSH queues the frames in one atomic step: a task redelivered after a worker
# died (acks_late) finds the mark and queues nothing twice.
_QUEUE_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  for i = 2, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
  return #ARGV - 1
end
return -1
"""


def queue_frames_once(key: str, frames: list[bytes], ttl_seconds: int) -> bool:
    """Queue `frames` unless frames were already queued under `key` (within `ttl_seconds`). True if queued."""
    queued = redis_client().eval(_QUEUE_ONCE, 2, f"pipewatch:sensors:sent:{key}", OUTBOX_KEY, ttl_seconds, *frames)
    return int(queued) >= 0


def record_sent(frames: list[bytes], separator: str, written_at: float) -> None:
    """Remember frames the bridge wrote, per sensor (the field after the tag), newest first, SENT_KEEP each.

    `$E` closers carry no sensor and are not kept. Raises redis.RedisError when Redis is down.
    """
    pipeline = redis_client().pipeline(transaction=False)
    touched = set()
    for frame in frames:
        fields = frame.decode("ascii", "replace").strip().split("*")[0].split(separator)
        if len(fields) < 3 or fields[0] == "$E":
            continue
        pipeline.lpush(SENT_PREFIX + fields[1], f"{written_at:.3f} {frame.decode('ascii', 'replace').strip()}")
        touched.add(fields[1])
    for code in touched:
        pipeline.ltrim(SENT_PREFIX + code, 0, SENT_KEEP - 1)
    pipeline.execute()


def sent_frames(code: str, limit: int = SENT_KEEP) -> list[tuple[float, str]]:
    """The frames last written to the device for one sensor, newest first: (unix time written, frame)."""
    rows = cast("list[bytes]", redis_client().lrange(SENT_PREFIX + code, 0, limit - 1))
    return [(float(stamp), frame) for stamp, frame in (row.decode("ascii").split(" ", 1) for row in rows)]
