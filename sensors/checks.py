"""System checks: a serial URL pyserial cannot open and a frame layout that cannot parse fail at start-up."""

from __future__ import annotations

import importlib
import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

URL_SCHEME = re.compile(r"^(?P<scheme>[a-z0-9][a-z0-9+.-]*)://", re.IGNORECASE)


def url_problem(url: str) -> str | None:
    """Why pyserial cannot handle `url` (an unknown `scheme://`), or None. Device paths are checked at open."""
    match = URL_SCHEME.match(url)
    if not match:
        return None
    scheme = match.group("scheme").lower()
    try:
        importlib.import_module(f"serial.urlhandler.protocol_{scheme}")
    except ImportError:
        return f"pyserial has no handler for {scheme}:// (use a device path, socket://, rfc2217:// or loop://)"
    return None


@register()
def check_sensors_settings(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if settings.SENSORS_SERIAL_URL and (problem := url_problem(settings.SENSORS_SERIAL_URL)):
        errors.append(Error(f"SERIAL_URL={settings.SENSORS_SERIAL_URL!r}: {problem}", id="sensors.E001"))
    from .settings import frame_layout

    try:
        frame_layout()
    except (ValueError, LookupError) as exc:
        errors.append(
            Error(
                f"the SENSORS_FRAME_* / SENSORS_DEVICE_TIME_ZONE settings do not make a frame layout: {exc}",
                id="sensors.E002",
            )
        )
    if settings.SENSORS_RETENTION_DAYS < 1:
        errors.append(Error("SENSORS_RETENTION_DAYS must be at least 1.", id="sensors.E003"))
    return errors
