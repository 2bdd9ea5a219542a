"""sensors's admin."""

from __future__ import annotations
