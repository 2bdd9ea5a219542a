"""sensors' settings read at call time (never at import), turned into the objects the code uses."""

from __future__ import annotations

from django.conf import settings

from .protocol import FrameLayout


def frame_layout() -> FrameLayout:
    """The site's reading-frame layout (SENSORS_FRAME_* settings)."""
    return FrameLayout(
        tag=settings.SENSORS_FRAME_TAG,
        separator=settings.SENSORS_FRAME_SEPARATOR,
        fields=tuple(settings.SENSORS_FRAME_FIELDS),
        time_format=settings.SENSORS_FRAME_TIME_FORMAT,
        time_zone=settings.SENSORS_DEVICE_TIME_ZONE,
        checksum=settings.SENSORS_FRAME_CHECKSUM,
    )
