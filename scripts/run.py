"""`make run`: migrate, create an admin, then start every pipewatch process under honcho.

Embedded defaults: SQLite under var/, a private Redis (scripts/redis_server.py) unless REDIS_URL is set,
simulated sensors on a pseudo-terminal unless SERIAL_URL is set, the KIPRIS simulator (with the sample
organisations imported) unless KIPRIS_API_KEY is set. Prints the URLs once the health endpoint answers
200. Ctrl-C reaches honcho, which stops every process (SIGTERM, then SIGKILL after 5 s); this script
then exits with honcho's code.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
HEALTH_WAIT_SECONDS = 120


def free_port(preferred: int) -> int:
    """`preferred` if nothing listens there, else any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free TCP port")


def read_procfile(path: Path) -> dict[str, str]:
    """Procfile entries in order: name -> command (comments and blank lines skipped)."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def say(message: str) -> None:
    sys.stdout.write(f"[pipewatch] {message}\n")
    sys.stdout.flush()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(VENV_BIN / "python"), "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def wait_healthy(url: str, honcho: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + HEALTH_WAIT_SECONDS
    while time.monotonic() < deadline and honcho.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(1)
    return False


def main() -> int:
    var_dir = Path(os.environ.get("PIPEWATCH_VAR_DIR", BASE_DIR / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PIPEWATCH_VAR_DIR"] = str(var_dir)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
    web_port = free_port(int(env.get("PORT", "8000")))
    flower_port = free_port(int(env.get("FLOWER_PORT", "5555")))
    env["WEB_PORT"], env["FLOWER_PORT"] = str(web_port), str(flower_port)

    # Every process writes its Prometheus samples here; samples of earlier runs would be counted again.
    prometheus_dir = var_dir / "prometheus"
    shutil.rmtree(prometheus_dir, ignore_errors=True)
    prometheus_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prometheus_dir)

    processes = read_procfile(BASE_DIR / "Procfile")
    if not env.get("REDIS_URL"):
        redis_port = free_port(int(env.get("REDIS_PORT", "6390")))
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        processes = {"redis": f"python scripts/redis_server.py {redis_port} {var_dir / 'redis'}", **processes}
        say(f"private Redis on 127.0.0.1:{redis_port}")
    # Real infrastructure when configured, simulators otherwise.
    if env.get("SERIAL_URL"):
        processes.pop("simulator")
        processes["bridge"] = "PIPEWATCH_PROCESS=bridge python manage.py serial_bridge"
        say(f"serial bridge on {env['SERIAL_URL']}")
    else:
        say("simulated sensors on a pseudo-terminal (set SERIAL_URL for a real port)")
    kipris_simulated = not env.get("KIPRIS_API_KEY")
    if kipris_simulated:
        kipris_port = free_port(int(env.get("KIPRIS_SIM_PORT", "8089")))
        env.update({"KIPRIS_SIM_PORT": str(kipris_port), "KIPRIS_BASE_URL": f"http://127.0.0.1:{kipris_port}"})
        env["KIPRIS_API_KEY"] = "simulator-key"
        say(f"KIPRIS simulator on 127.0.0.1:{kipris_port} (set KIPRIS_API_KEY for the real service)")
    else:
        processes.pop("kipris_sim")
    run_procfile = var_dir / "Procfile.run"
    run_procfile.write_text("".join(f"{name}: {command}\n" for name, command in processes.items()))

    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    manage(env, "ensure_admin")
    if kipris_simulated:
        manage(env, "import_orgs", "ingest/fixtures/sample_orgs.csv")

    # Ctrl-C goes to the whole foreground group: honcho handles it; this script only waits for honcho.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    honcho = subprocess.Popen(
        [str(VENV_BIN / "honcho"), "start", "-f", str(run_procfile), "-d", str(BASE_DIR)],
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    signal.signal(signal.SIGTERM, lambda *_: honcho.terminate())

    web = f"http://127.0.0.1:{web_port}"
    if wait_healthy(f"{web}/api/v1/health", honcho):
        say("up and healthy. Press Ctrl-C to stop everything.")
    else:
        say(f"not healthy after {HEALTH_WAIT_SECONDS} s; see the process logs above and {web}/api/v1/health")
    for name, url in [
        ("web", f"{web}/"),
        ("admin", f"{web}/admin/"),
        ("API docs", f"{web}/api/docs/"),
        ("health", f"{web}/api/v1/health"),
        ("metrics", f"{web}/metrics"),
        ("flower", f"http://127.0.0.1:{flower_port}/"),
    ]:
        say(f"{name:9} {url}")
    return honcho.wait()


if __name__ == "__main__":
    sys.exit(main())
