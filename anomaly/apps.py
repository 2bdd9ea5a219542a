from __future__ import annotations

from django.apps import AppConfig


class AnomalyConfig(AppConfig):
    name = "anomaly"
