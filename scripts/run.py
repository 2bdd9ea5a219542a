"""`make run`: migrate, create an admin, then start every pipewatch process under supervisord.

Embedded defaults: SQLite under var/, a private Redis (scripts/redis_server.py, append-only file on, so a
restart keeps the queues) unless REDIS_URL is set, simulated sensors on a pseudo-terminal unless SERIAL_URL
is set, the KIPRIS simulator (with the sample organisations imported) unless KIPRIS_API_KEY is set. Prints
the URLs once the health endpoint answers 200 and every printed URL answers.

supervisord restarts a process that crashes and leaves the others running (core/supervision.py says how it
backs off and when it gives up); each process's output goes to var/supervisor/log/<name>.log, supervisord's
own log (starts, exits, restarts) to this terminal. Ctrl-C reaches supervisord, which stops every process
group (SIGTERM, then SIGKILL after 10 s); this script then exits with supervisord's code.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
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


# supervisord: a process that dies within STARTSECS of starting is retried after 1, 2, ... s, STARTRETRIES
# times, then given up (FATAL). The slowest process, gunicorn with 2 workers, is up in ~5 s here.
STARTSECS = 10
STARTRETRIES = 5
STOPWAITSECS = 10
# A unix socket's path is limited to 108 bytes (sun_path); supervisord refuses longer ones.
UNIX_SOCKET_MAX = 100


def split_env(command: str) -> tuple[dict[str, str], str]:
    """`A=1 B=2 prog args` -> ({"A": "1", "B": "2"}, "prog args") (the Procfile's env prefixes)."""
    words = command.split(" ")
    assignments = {}
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        name, value = words.pop(0).split("=", 1)
        assignments[name] = value
    return assignments, " ".join(words)


def supervisord_conf(processes: dict[str, str], directory: Path) -> str:
    """supervisord's configuration for the Procfile's processes: one program each, plus the event listener.

    Each program runs through `sh -c "sleep <backoff>; exec ..."` so the Procfile's $VARIABLES expand, a
    crash-looping program waits the supervision listener's backoff, and the program itself (not a shell)
    receives signals; stopasgroup/killasgroup stop a program's children too (gunicorn and
    Celery workers). `%` is supervisord's interpolation character, so it is doubled.
    """
    log_dir = directory / "log"
    socket_path = directory / "supervisor.sock"
    if len(str(socket_path)) > UNIX_SOCKET_MAX:  # e.g. a deep test directory: a short one of its own in /tmp
        digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
        socket_path = Path(tempfile.gettempdir()) / f"pipewatch-supervisor-{digest}.sock"
    sections = [
        "[supervisord]",
        "nodaemon=true",  # in the foreground, its log echoed to this terminal
        f"logfile={directory / 'supervisord.log'}",
        f"pidfile={directory / 'supervisord.pid'}",
        f"childlogdir={log_dir}",
        "",
        "[unix_http_server]",
        f"file={socket_path}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{socket_path}",
        "",
        "[eventlistener:supervision]",
        f"command={VENV_BIN / 'python'} manage.py supervise_events",
        f"directory={BASE_DIR}",
        'environment=PIPEWATCH_PROCESS="supervision"',
        "events=PROCESS_STATE,TICK_60",
        "buffer_size=100",
        "autorestart=true",
        f"stderr_logfile={log_dir / 'supervision.log'}",
        "",
    ]
    for name, line in processes.items():
        assignments, command = split_env(line)
        environment = ",".join(f'{key}="{value}"' for key, value in assignments.items())
        # The supervision listener's backoff for this program (core/supervision.py): 0 until it crash-loops.
        backoff = f'sleep "$(cat {shlex.quote(str(directory / "delay" / name))} 2>/dev/null || echo 0)";'
        sections += [
            f"[program:{name}]",
            "command=" + shlex.join(["/bin/sh", "-c", f"{backoff} exec {command}"]).replace("%", "%%"),
            f"directory={BASE_DIR}",
            *([f"environment={environment.replace('%', '%%')}"] if environment else []),
            "priority=1" if name == "redis" else "priority=10",
            "autorestart=true",
            f"startsecs={STARTSECS}",
            f"startretries={STARTRETRIES}",
            f"stopwaitsecs={STOPWAITSECS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log_dir / f'{name}.log'}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=3",
            "",
        ]
    return "\n".join(sections)


def write_supervision(processes: dict[str, str], directory: Path) -> Path:
    """A fresh supervision directory (no state of an earlier run) with its configuration; returns its path."""
    (directory / "log").mkdir(parents=True, exist_ok=True)
    (directory / "state.json").unlink(missing_ok=True)
    conf = directory / "supervisord.conf"
    conf.write_text(supervisord_conf(processes, directory))
    return conf


def wait_answering(url: str, supervisor: subprocess.Popen[bytes], seconds: float | None, *, healthy: bool) -> bool:
    """True once `url` answers (healthy: with 200; otherwise with any HTTP status); False after `seconds`
    (None: for as long as supervisord runs)."""
    deadline = time.monotonic() + seconds if seconds is not None else float("inf")
    while time.monotonic() < deadline and supervisor.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200 or not healthy:
                    return True
        except urllib.error.HTTPError:
            if not healthy:
                return True
        except OSError:
            pass
        time.sleep(1)
    return False


def base_env(var_dir: Path) -> dict[str, str]:
    """The environment every process gets: this venv first, free ports, a fresh Prometheus directory."""
    env = dict(os.environ)
    env["PIPEWATCH_VAR_DIR"] = str(var_dir)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
    env["WEB_PORT"] = str(free_port(int(env.get("PORT", "8000"))))
    env["FLOWER_PORT"] = str(free_port(int(env.get("FLOWER_PORT", "5555"))))
    # Every process writes its Prometheus samples here; samples of earlier runs would be counted again.
    prometheus_dir = var_dir / "prometheus"
    shutil.rmtree(prometheus_dir, ignore_errors=True)
    prometheus_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prometheus_dir)
    return env


def main() -> int:
    var_dir = Path(os.environ.get("PIPEWATCH_VAR_DIR", BASE_DIR / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    env = base_env(var_dir)
    web_port, flower_port = env["WEB_PORT"], env["FLOWER_PORT"]

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
    supervision_dir = var_dir / "supervisor"
    env["PIPEWATCH_SUPERVISION_DIR"] = str(supervision_dir)
    conf = write_supervision(processes, supervision_dir)

    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    manage(env, "ensure_admin")
    manage(env, "event_token", "generator", "--output", str(var_dir / "eventlogs-token"))  # eventlogs generator
    if kipris_simulated:
        manage(env, "import_orgs", "ingest/fixtures/sample_orgs.csv")

    # Ctrl-C goes to the whole foreground group: supervisord handles it (its programs run in process groups
    # of their own, so only supervisord decides how they stop); this script only waits for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    supervisor = subprocess.Popen(
        [str(VENV_BIN / "supervisord"), "-c", str(conf)],
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    signal.signal(signal.SIGTERM, lambda *_: supervisor.terminate())

    web = f"http://127.0.0.1:{web_port}"
    health = f"{web}/api/v1/health"
    urls = [
        # console: the operator console first (log in as admin; `/` still answers JSON clients with the API index)
        ("console", f"{web}/"),
        ("admin", f"{web}/admin/"),
        ("API docs", f"{web}/api/docs/"),
        ("health", health),
        ("metrics", f"{web}/metrics"),
        ("flower", f"http://127.0.0.1:{flower_port}/"),
    ]
    # A busy machine can take minutes to boot 14 processes: say so after a while, and keep waiting. The URLs
    # are printed once health answers 200 and every one of them answers (Flower boots on its own).
    log_dir = supervision_dir / "log"
    checks = [(health, True, f"not healthy ({health})")] + [
        (url, False, f"{name} ({url}) not answering") for name, url in urls
    ]
    for url, healthy, problem in checks:
        if not wait_answering(url, supervisor, HEALTH_WAIT_SECONDS, healthy=healthy):
            say(f"{problem} after {HEALTH_WAIT_SECONDS} s, still waiting; see {log_dir}")
            if not wait_answering(url, supervisor, None, healthy=healthy):
                return supervisor.wait()
    say("up and healthy. Press Ctrl-C to stop everything.")
    for name, url in urls:
        say(f"{name:9} {url}")
    say(f"logs      {supervision_dir / 'log'}/<process>.log; supervisorctl -c {conf} status")
    return supervisor.wait()


if __name__ == "__main__":
    sys.exit(main())
