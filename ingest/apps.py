from __future__ import annotations

from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ingest"
    verbose_name = "KIPRIS ingest"

    def ready(self) -> None:
        # Registers the "kipris" health check and the ingest metrics.
        from . import health, metrics  # noqa: F401
        from .kipris.client import install_log_redaction

        install_log_redaction()
