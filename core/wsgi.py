"""WSGI entry point for gunicorn (`gunicorn core.wsgi`)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
application = get_wsgi_application()

from core.checks import refuse_bad_configuration  # noqa: E402 - needs the apps loaded above

refuse_bad_configuration()
