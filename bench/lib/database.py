"""The PostgreSQL database of one bench run: named, made fresh, handed to Django, dropped.

A bench fills its own database (millions of rows, widened columns, truncated tables), so it never runs in
the one DATABASE_URL names: it takes a sibling of it on the same server, dropped and created per run, so
that every run starts from the same empty, migrated schema.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import psycopg2

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/pipewatch"


def bench_url(suffix: str) -> str:
    """`<DATABASE_URL's name>_<suffix>` on DATABASE_URL's server: two checkouts with their own
    DATABASE_URL run the same bench at once without dropping each other's database."""
    parsed = urlsplit(os.environ.get("DATABASE_URL", DEFAULT_URL))
    return parsed._replace(path=f"/{parsed.path.lstrip('/') or 'pipewatch'}_{suffix}").geturl()


def _admin(url: str) -> psycopg2.extensions.connection:
    """A connection to url's server outside url's database (one cannot drop the database one is in)."""
    parsed = urlsplit(url)
    connection = psycopg2.connect(
        host=parsed.hostname,
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        dbname="postgres",
    )
    connection.autocommit = True  # CREATE and DROP DATABASE cannot run inside a transaction
    return connection


def _name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def recreate_database(url: str, *, reuse: bool = False) -> bool:
    """Drop url's database (FORCE: a crashed run's workers may still hold connections) and create it empty.

    With reuse an existing one is kept, for a bench whose seeding costs more than its measurement.
    Returns whether the database is new, i.e. still to be seeded.
    """
    connection = _admin(url)
    try:
        with connection.cursor() as cursor:
            if reuse:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [_name(url)])
                if cursor.fetchone() is not None:
                    return False
            cursor.execute(f'DROP DATABASE IF EXISTS "{_name(url)}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{_name(url)}"')
            return True
    finally:
        connection.close()


def drop_database(url: str) -> None:
    """Give the server its space back after a bench that fills gigabytes."""
    connection = _admin(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{_name(url)}" WITH (FORCE)')
    finally:
        connection.close()


def setup_django(url: str) -> None:
    """Point this process's Django at url, set it up and migrate quietly (the schema the bench measures on).

    Settings are read here: whatever else the bench sets in os.environ must be set before the call.
    """
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
