"""`manage.py event_token USER [--output FILE]`: the API token a producer (a generator, a game server) sends.

Creates the user (no password, not staff) and its token when missing; prints the token or writes it to
FILE (mode 0600), which `generate_events --token-file` reads (`make run` uses this).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Get or create an event producer's API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--output", type=Path, help="write the token here instead of printing it")

    def handle(self, *args: Any, **opts: Any) -> None:
        user, created = get_user_model().objects.get_or_create(username=opts["username"])
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        token, _ = Token.objects.get_or_create(user=user)
        if opts["output"]:
            opts["output"].parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(opts["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(token.key)
            self.stdout.write(f"token of {user.get_username()!r} written to {opts['output']}")
        else:
            self.stdout.write(token.key)
