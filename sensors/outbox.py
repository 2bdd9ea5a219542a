"""The outbox: frames for the device, queued by any process, written to the port only by the bridge.

A Redis list (RPUSH here, read in order and trimmed after a successful write by the bridge), so a
frame queued while the bridge is down or the port is gone waits for it instead of being lost.
"""

from __future__ import annotations

from datetime import datetime

from core.redis import redis_client

from .protocol import format_alert_frame

OUTBOX_KEY = "pipewatch:sensors:outbox"


def queue_frames(frames: list[bytes]) -> None:
    """Append complete frames (with CRLF) to the outbox, in order. Raises redis.RedisError when Redis is down."""
    if frames:
        redis_client().rpush(OUTBOX_KEY, *frames)


def queue_alert_frame(sensor_code: str, minute: datetime, flow_flags: str, pressure_flags: str) -> None:
    """Queue `$A,<sensor>,<minute>,<flow flags>,<pressure flags>` (one 0/1 digit per detection method)."""
    from .settings import frame_layout

    queue_frames([format_alert_frame(sensor_code, minute, flow_flags, pressure_flags, frame_layout())])


def outbox_length() -> int:
    return int(redis_client().llen(OUTBOX_KEY))


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
