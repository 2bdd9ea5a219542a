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
