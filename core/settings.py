"""Django settings for pipewatch, read from the environment only (django-environ).

Every variable is listed with its default and meaning in README.md ("Configuration").
Bad values fail loudly here (django-environ raises) or in the system checks in core/checks.py.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()


def env_bool(name: str, default: bool) -> bool:
    """A boolean variable that fails loudly on anything but true/false (django-environ reads typos as False)."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={os.environ[name]!r} is not a boolean: use true or false")


# The one known-insecure key: dev only. core/checks.py refuses it in production.
DEV_SECRET_KEY = "pipewatch-dev-insecure-secret-key-do-not-use-in-production"  # noqa: S105

PIPEWATCH_ENV = env.str("PIPEWATCH_ENV", default="dev")
DEBUG = env_bool("DEBUG", default=PIPEWATCH_ENV == "dev")
# Unset, the dev key stands in so every command still loads; check pipewatch.E002 refuses it in production.
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
VAR_DIR = Path(env.str("PIPEWATCH_VAR_DIR", default=str(BASE_DIR / "var")))
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_URL = "/static/"
# The admin's and Swagger's static files are served by the app itself (whitenoise), in dev and prod.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Prometheus multiprocess mode: every process (gunicorn workers, Celery prefork children, the bridge)
# writes its samples to files here and /metrics aggregates them. prometheus-client reads the variable
# when it is first imported, so it is set here, before any app imports it.
PROMETHEUS_MULTIPROC_DIR = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
# A Celery worker or beat in its own container serves its samples on this port (0 = off; the web's /metrics
# already covers processes that share its PROMETHEUS_MULTIPROC_DIR, as in `make run`).
METRICS_PORT = env.int("METRICS_PORT", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "corsheaders",
    "django_celery_beat",
    "core",
    "ingest",
    "sensors",
    "anomaly",
    "forecasting",
    "monitoring",
    "aiops",  # aiops: analyze, custom metrics, capacity, incidents, Alertmanager receiver
    "eventlogs",  # eventlogs: collector, raw archive, enrichment, datasets, behaviour detection
    # console: the operator web pages (django-htmx gives views request.htmx)
    "django_htmx",
    "console",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # core: JSON 404/405 for every unknown path or method under /api/, DEBUG or not (issue 16).
    "core.api.middleware.ApiJsonErrorsMiddleware",
    # console: request.htmx tells a partial update from a full page load
    "django_htmx.middleware.HtmxMiddleware",
]
# console: pages need a login (Django auth); the admin user from `make run` works.
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:overview"
LOGOUT_REDIRECT_URL = "console:login"

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _process_name() -> str:
    """A short name for this process, shown in PostgreSQL's pg_stat_activity and in log file names."""
    if name := os.environ.get("PIPEWATCH_PROCESS"):
        return name
    argv = [Path(sys.argv[0]).name, *sys.argv[1:2]] if sys.argv else ["python"]
    return "-".join(argv)[:40]


PROCESS_NAME = _process_name()

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'pipewatch.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = f"pipewatch:{PROCESS_NAME}"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    # SQLite (the embedded default) is shared by several processes: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        # IMMEDIATE: a write transaction takes the lock when it starts, so two processes never deadlock
        # upgrading read locks (SQLite's "database is locked" that the timeout cannot cure).
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "pipewatch",
        # A dead Redis must not take the API down: cache misses instead of 500s (throttling fails open).
        "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }
}
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Seoul")
USE_I18N = True
USE_TZ = True

# Production hardening; harmless in dev because they only apply when DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG and PIPEWATCH_ENV == "prod"
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])

# --- Logging: `time | level | logger | message`; with LOG_DIR, one file per process, rotated daily, 7 kept.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_DIR = env.str("LOG_DIR", default="")
_log_handlers: dict[str, dict[str, object]] = {
    "console": {"class": "logging.StreamHandler", "formatter": "line"},
}
if LOG_DIR:
    Path(LOG_DIR).mkdir(parents=True, exist_ok=True)
    _log_handlers["file"] = {
        "class": "logging.handlers.TimedRotatingFileHandler",
        "formatter": "line",
        "filename": str(Path(LOG_DIR) / f"{PROCESS_NAME}.log"),
        "when": "midnight",
        "backupCount": 7,
        "encoding": "utf-8",
    }
# ingest: harvest lines as `time | level | org_type | ipr_mode | message` (the old harvester's format,
# issue 16; the context comes from ingest.logs.harvest_context); with LOG_DIR also one file per org type
# and IPR mode, rotated at midnight, 7 kept.
for _handler in _log_handlers.values():
    _handler["filters"] = ["harvest_context"]
_ingest_handlers: list[str] = []
if LOG_DIR:
    _log_handlers["ingest_files"] = {
        "()": "ingest.logs.SplitByHarvestFileHandler",
        "directory": str(Path(LOG_DIR)),
        "formatter": "line",
        "filters": ["harvest_context"],
    }
    _ingest_handlers.append("ingest_files")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {
            "()": "core.logformat.RoutedFormatter",
            "fmt": "%(asctime)s | %(levelname)s | %(name)s | %(message)s",
            "routes": {"ingest": "%(asctime)s | %(levelname)s | %(org_type)s | %(ipr_mode)s | %(message)s"},
        },
    },
    "filters": {"harvest_context": {"()": "ingest.logs.HarvestContextFilter"}},
    "handlers": _log_handlers,
    "root": {"handlers": [name for name in _log_handlers if name != "ingest_files"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": LOG_LEVEL},
        "ingest": {"handlers": _ingest_handlers, "level": LOG_LEVEL},
    },
}

# --- REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # core: JWT bearer tokens (obtain/refresh/verify under /api/v1/auth/jwt/), issue 16.
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    # One read policy for the whole API (API_PUBLIC_READ below); writes always need authentication.
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.PublicReadOrAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttles.AnonThrottle", "core.api.throttles.UserThrottle"],
    "EXCEPTION_HANDLER": "core.api.errors.json_exception_handler",
}
# Seconds a validated API token is trusted without a database read, per process (core.api.authentication).
API_TOKEN_CACHE_SECONDS = env.float("API_TOKEN_CACHE_SECONDS", default=30.0)
# Read on every request by core.api.throttles (fixed windows), so they can be changed without a restart.
API_THROTTLE_ANON = env.str("API_THROTTLE_ANON", default="120/min")
API_THROTTLE_USER = env.str("API_THROTTLE_USER", default="3000/min")
# core: anonymous GETs on every API endpoint (the old host-metrics curl examples work without a token).
# On in dev, off in prod; writes need authentication either way (docs/monitoring.md).
API_PUBLIC_READ = env_bool("API_PUBLIC_READ", default=PIPEWATCH_ENV == "dev")
# core: JWT lifetimes (djangorestframework-simplejwt; signed with SECRET_KEY).
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "pipewatch API",
    "DESCRIPTION": "Water-network sensing, KIPRIS harvesting and host monitoring on one task queue.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share a field name across apps get names of their own in the schema.
    "ENUM_NAME_OVERRIDES": {
        "ModelVersionStatusEnum": "forecasting.models.ModelVersion.Status",
        "TrainingRunStatusEnum": "forecasting.models.TrainingRun.Status",
        "EventStatusEnum": "anomaly.models.EventStatus",
        "HarvestStatusEnum": "ingest.models.RunStatus",
        "IPRKindEnum": "ingest.models.IPRKind",
        "SearchKindEnum": "ingest.models.SearchKind",
        "MetricEnum": "sensors.models.Metric",
    },
}

# --- Celery (namespace CELERY_). Every value is here with the reason for it.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
# JSON only: task messages carry ids and ISO dates, never pickled objects.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue("default"), Queue("detect"), Queue("ingest"), Queue("training")]
CELERY_TASK_QUEUES.append(Queue("events"))  # eventlogs: enrichment of collected batches
# Routes by task-name prefix (first match wins); a task's explicit `queue=` still takes precedence.
CELERY_TASK_ROUTES = ("core.celery.route_by_prefix",)
PIPEWATCH_QUEUE_PREFIXES = [
    ("forecasting.train", "training"),
    ("anomaly.", "detect"),
    ("ingest.", "ingest"),
    ("eventlogs.", "events"),  # eventlogs: enrichment scales out by adding `events` workers
]
# acks_late + reject_on_worker_lost: a worker killed mid-task leaves the message un-acked, so another
# worker runs it again. Safe because every acks_late task is idempotent (upserts on natural keys).
# Training tasks opt out (acks_late=False): a run is far longer than the visibility timeout, so the
# broker would hand it to a second worker while the first is still training; the forecasting app keeps
# a run record and a watchdog instead.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process: long tasks never sit behind a prefetched backlog.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers un-acked messages after this many seconds. It must exceed the longest acks_late task
# (KIPRIS page batches have a 15-minute hard limit); otherwise a slow task would run twice.
# kombu sweeps for expired un-acked messages every interval x throttle seconds (default 10 x 10); one scan
# every 10 s puts a dead worker's message back within visibility_timeout + 10 s, for a cheap ZRANGE.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]}
CELERY_RESULT_EXPIRES = 24 * 3600
# A default hard limit so no task can hang a process forever; tasks set tighter ones themselves.
CELERY_TASK_SOFT_TIME_LIMIT = 15 * 60
CELERY_TASK_TIME_LIMIT = 16 * 60
# Soft shutdown (Celery 5.5+): on SIGTERM running tasks get this long to finish before the cold shutdown.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env.float("CELERY_SOFT_SHUTDOWN_TIMEOUT", default=20.0)
# When the broker connection drops, running acks_late tasks finish; their ack is lost with the connection,
# so Redis redelivers them after the visibility timeout (they are idempotent). Cancelling them instead
# (True) loses them when the broker is also the result backend, as here: Celery kills the task, fails to
# record the retry on the dead Redis, then acks the killed task on the new connection. Measured with
# tests/core/test_broker_restart.py: True lost the running task in 2 of 3 restarts, False in none of 4.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection before and after each task unless this is set: a
# new PostgreSQL backend per task (~7 ms to connect, then cold catalog caches, and eventlogs' session staging
# table again: ~20 ms of a 65 ms enrichment task). With it the fixup closes them every this many tasks, and
# core/celery.py closes an unusable or CONN_MAX_AGE-old connection between tasks, as Django does between
# requests.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# Events for Flower (task timeline, worker state).
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_TASK_TRACK_STARTED = True
# Logging goes through Django's LOGGING (core/celery.py connects setup_logging).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat: the database scheduler (editable in the admin) wrapped in a Redis lock so only one beat sends.
CELERY_BEAT_SCHEDULER = "core.beat:SingletonDatabaseScheduler"
# Wake at least every 5 s: admin edits are picked up quickly and the beat heartbeat stays fresh.
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
BEAT_LOCK_TTL_SECONDS = env.int("BEAT_LOCK_TTL_SECONDS", default=30)
BEAT_STALE_AFTER_SECONDS = env.int("BEAT_STALE_AFTER_SECONDS", default=60)
# Set by `make run` (scripts/run.py): supervisord's directory; enables the `processes` health check.
SUPERVISION_DIR = env.str("PIPEWATCH_SUPERVISION_DIR", default="")
# How long the health check waits for workers to answer a ping before it reports them missing.
HEALTH_WORKER_PING_TIMEOUT = env.float("HEALTH_WORKER_PING_TIMEOUT", default=1.0)

# --- Notifications (core/notify.py): empty means that channel is off.
SLACK_WEBHOOK_URL = env.str("SLACK_WEBHOOK_URL", default="")
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
NOTIFY_DEDUP_SECONDS = env.int("NOTIFY_DEDUP_SECONDS", default=3600)
NOTIFY_TIMEOUT_SECONDS = env.float("NOTIFY_TIMEOUT_SECONDS", default=5.0)

# ---------------------------------------------------------------------------------------------------
# Domain apps' settings: each app keeps its own block below (env var, default, why).

# --- sensors
# Unknown sensor codes on the wire create a Sensor row (true) or are counted and rejected (false).
SENSORS_AUTO_REGISTER = env_bool("SENSORS_AUTO_REGISTER", default=True)
# The serial port the bridge owns (pyserial URL: /dev/ttyUSB0, socket://host:port, rfc2217://, loop://).
SENSORS_SERIAL_URL = env.str("SERIAL_URL", default="")
SENSORS_SERIAL_BAUD = env.int("SENSORS_SERIAL_BAUD", default=9600)
# Frame layout for sites whose devices use another ASCII layout (docs/serial-protocol.md).
SENSORS_FRAME_TAG = env.str("SENSORS_FRAME_TAG", default="R")
SENSORS_FRAME_SEPARATOR = env.str("SENSORS_FRAME_SEPARATOR", default=",")
SENSORS_FRAME_FIELDS = env.list("SENSORS_FRAME_FIELDS", default=["sensor", "ts", "flow", "pressure", "status"])
SENSORS_FRAME_TIME_FORMAT = env.str("SENSORS_FRAME_TIME_FORMAT", default="%y%m%d%H%M")
# Devices stamp minutes in local time; this is the zone their clocks run in.
SENSORS_DEVICE_TIME_ZONE = env.str("SENSORS_DEVICE_TIME_ZONE", default=TIME_ZONE)
SENSORS_FRAME_CHECKSUM = env_bool("SENSORS_FRAME_CHECKSUM", default=True)
# Readings not yet committed live in this append-only journal (the spool); replayed at start.
SENSORS_SPOOL_DIR = Path(env.str("SENSORS_SPOOL_DIR", default=str(VAR_DIR / "spool")))
# Cap of the reconnect backoff (0.5 s doubling up to this), for a port or a database that is gone.
SENSORS_RECONNECT_MAX_SECONDS = env.float("SENSORS_RECONNECT_MAX_SECONDS", default=30.0)
# The bridge's heartbeat is stale (health check "bridge" fails) after this long.
SENSORS_BRIDGE_STALE_SECONDS = env.int("SENSORS_BRIDGE_STALE_SECONDS", default=30)
# Production sets true: /api/v1/health then fails while no bridge runs; otherwise only a bridge that
# started and stopped heartbeating without a clean exit fails it.
SENSORS_BRIDGE_REQUIRED = env_bool("SENSORS_BRIDGE_REQUIRED", default=False)
# Readings older than this are deleted daily by sensors.purge_old_readings.
SENSORS_RETENTION_DAYS = env.int("SENSORS_RETENTION_DAYS", default=365)

# --- anomaly
# Clean minutes after which an anomaly event closes (fewer: more flapping events; more: late "resolved").
ANOMALY_CLEAN_MINUTES = env.int("ANOMALY_CLEAN_MINUTES", default=10)
# Detection evaluates the minute that began this many minutes ago. A device reports the minute it measured
# once that minute is over (the simulator at hh:mm+1:00), and beat starts detection at second 0: with 1,
# minute M was evaluated at M+1:00.02 before its readings arrived, and under `make run` every live minute
# of every sensor came out "no_data" (nothing judged). 2 leaves the readings a whole minute to arrive.
ANOMALY_DETECT_DELAY_MINUTES = env.int("ANOMALY_DETECT_DELAY_MINUTES", default=2)
# Minutes a run looks back for minutes nobody evaluated (a stalled worker): each is evaluated once, late.
ANOMALY_CATCHUP_MINUTES = env.int("ANOMALY_CATCHUP_MINUTES", default=15)
# The detection lock's lifetime: above the task's hard time limit (55 s), so it never expires mid-run.
ANOMALY_LOCK_SECONDS = env.int("ANOMALY_LOCK_SECONDS", default=58)
# Health: detection is failing when no minute was evaluated for this many minutes.
ANOMALY_STALE_MINUTES = env.int("ANOMALY_STALE_MINUTES", default=5)
# system method: minutes without a reading before a gap fires at 1-minute cadence (a sensor reporting every
# c minutes: c - 1 more, i.e. the expected reading is 4 minutes overdue); identical minutes before "stuck".
ANOMALY_GAP_MINUTES = env.int("ANOMALY_GAP_MINUTES", default=5)
# Noisy meters never repeat a value 5 minutes running; sensors whose normal data does (a closed valve at
# night) get a longer window from their criteria (twice their longest normal flat run).
ANOMALY_STUCK_MINUTES = env.int("ANOMALY_STUCK_MINUTES", default=5)
# ... and a stuck run must also span this many identical readings: what binds at 5- or 15-minute cadence
# (10 or 30 minutes), where one step between two readings is already 5 "flat" minutes.
ANOMALY_STUCK_READINGS = env.int("ANOMALY_STUCK_READINGS", default=3)
# The window the system method reads per minute (caps the stuck window; longer costs more per cycle).
ANOMALY_LOOKBACK_MINUTES = env.int("ANOMALY_LOOKBACK_MINUTES", default=60)
# value/predict bands: half-width in robust sigmas, and the IQR fence factor (the wider band wins).
ANOMALY_VALUE_K = env.float("ANOMALY_VALUE_K", default=6.0)
ANOMALY_IQR_FENCE = env.float("ANOMALY_IQR_FENCE", default=3.0)
ANOMALY_RESIDUAL_K = env.float("ANOMALY_RESIDUAL_K", default=6.0)
# night method: relative rise of the night minimum over its baseline, for this many consecutive nights.
ANOMALY_NIGHT_MARGIN = env.float("ANOMALY_NIGHT_MARGIN", default=0.12)
ANOMALY_NIGHT_NIGHTS = env.int("ANOMALY_NIGHT_NIGHTS", default=2)
# Initial data for the first criteria (CSV: sensor,ts,flow,pressure,status); the DB takes over after
# ANOMALY_CRITERIA_DB_DAYS days of readings.
ANOMALY_CRITERIA_FILE = Path(
    env.str("ANOMALY_CRITERIA_FILE", default=str(BASE_DIR / "anomaly" / "data" / "initial_readings.csv.gz"))
)
ANOMALY_CRITERIA_DB_DAYS = env.int("ANOMALY_CRITERIA_DB_DAYS", default=90)
# A new criteria version this many months after the previous build (checked daily).
ANOMALY_CRITERIA_REBUILD_MONTHS = env.int("ANOMALY_CRITERIA_REBUILD_MONTHS", default=3)
# Queue the $A alert frame for the bridge every minute (off where no device listens).
ANOMALY_ALERT_FRAMES = env_bool("ANOMALY_ALERT_FRAMES", default=True)
# Per sensor-minute detection results (methods ran / fired / scores) are kept this long (issue 16).
ANOMALY_RESULTS_RETENTION_DAYS = env.int("ANOMALY_RESULTS_RETENTION_DAYS", default=30)

# --- forecasting
# Trained models (Keras file + scalers) live here, one directory per version.
FORECAST_MODEL_DIR = Path(env.str("FORECAST_MODEL_DIR", default=str(MEDIA_ROOT / "models")))
# Upper bound on epochs; early stopping (patience below) usually ends sooner.
FORECAST_EPOCHS = env.int("FORECAST_EPOCHS", default=20)
FORECAST_PATIENCE = env.int("FORECAST_PATIENCE", default=3)
# Training batch: 128 validated best per wall second on the simulator (see docs/forecasting.md).
FORECAST_BATCH_SIZE = env.int("FORECAST_BATCH_SIZE", default=128)
# Windows drawn at random (hourly stride pool) per epoch: bounds epoch time however many sensors there are.
FORECAST_WINDOWS_PER_EPOCH = env.int("FORECAST_WINDOWS_PER_EPOCH", default=8192)
FORECAST_LSTM_UNITS = env.int("FORECAST_LSTM_UNITS", default=48)
FORECAST_SEED = env.int("FORECAST_SEED", default=42)
# Candidates trained and compared on validation: "boosted" (gradient-boosted trees) and "lstm"; the
# seasonal profile is always compared, and per lead day the best candidate or pair serves. Trees only by
# default: on the BWDF development set trees + the level x shape profile beat the LSTM, trees, blends and
# the old profile together (0.688/0.701/0.820 against 0.730/0.727/0.908, docs/forecasting.md) at half
# the wall time; "lstm,boosted" adds the LSTM (opt-in).
FORECAST_CANDIDATES = env.list("FORECAST_CANDIDATES", default=["boosted"])
# Training rows of the trees, (origin, lead hour) pairs drawn whatever the number of sensors: bounds their
# fit (~70 s of CPU at 60,000 with absolute error on the shared machine; 120,000 scored the same on the
# BWDF tuning weeks: 0.706/0.676/0.814 against 0.707/0.684/0.816).
FORECAST_TREE_ROWS = env.int("FORECAST_TREE_ROWS", default=60_000)
# Public holidays in the calendar: an ISO country code (IT, KR), "auto" (the country of TIME_ZONE) or "".
# They become rest days only for sensors whose history shows it (forecasting/services/calendar.py).
FORECAST_HOLIDAYS = env.str("FORECAST_HOLIDAYS", default="auto")
# A run whose heartbeat is older than this is presumed dead (worker killed) and queued again by the watchdog.
FORECAST_RUN_STALE_SECONDS = env.int("FORECAST_RUN_STALE_SECONDS", default=300)
FORECAST_RUN_MAX_ATTEMPTS = env.int("FORECAST_RUN_MAX_ATTEMPTS", default=3)
# The hourly roll-up re-reads this many hours before the last hour it reached: late readings are included.
FORECAST_LATE_DATA_HOURS = env.int("FORECAST_LATE_DATA_HOURS", default=6)
# Forecast rows issued longer ago are deleted: 336 rows per sensor per hour, ~24 M rows for 1,000 sensors
# over 3 days (detection only reads the latest issue; the API's history goes back this far).
FORECAST_RETENTION_DAYS = env.int("FORECAST_RETENTION_DAYS", default=3)

# --- ingest (KIPRIS)
# Where the client sends requests: the public host in production, the kipris_simulator in dev and tests.
KIPRIS_BASE_URL = env.str("KIPRIS_BASE_URL", default="http://plus.kipris.or.kr")
# The KIPRIS Plus key (may contain + / =); stored decoded, percent-encoded once by requests. Never logged.
KIPRIS_API_KEY = env.str("KIPRIS_API_KEY", default="")
# Global request rate and burst of the Redis token bucket shared by every worker (KIPRIS blocks hammering keys).
KIPRIS_RATE_PER_SEC = env.float("KIPRIS_RATE_PER_SEC", default=20.0)
KIPRIS_BURST = env.int("KIPRIS_BURST", default=10)
# Calls a calendar month (the free tier is 1,000); harvesting stops before it is exceeded. 0 = unlimited.
KIPRIS_MONTHLY_BUDGET = env.int("KIPRIS_MONTHLY_BUDGET", default=1000)
# Alert once this share of the monthly budget is used.
KIPRIS_BUDGET_ALERT_RATIO = env.float("KIPRIS_BUDGET_ALERT_RATIO", default=0.9)
# Search family for the per-applicant searches: "kipo-api" (pageNo/numOfRows) or "openapi" (docsStart/docsCount).
KIPRIS_SEARCH_FAMILY = env.str("KIPRIS_SEARCH_FAMILY", default="kipo-api")
# (connect, read) timeouts in seconds: 500-row pages with abstracts can take several seconds.
KIPRIS_CONNECT_TIMEOUT = env.float("KIPRIS_CONNECT_TIMEOUT", default=10.0)
KIPRIS_READ_TIMEOUT = env.float("KIPRIS_READ_TIMEOUT", default=60.0)
# A totalCount above this for one applicant number means an ignored parameter (the whole database answered).
KIPRIS_MAX_TOTAL_PER_APPLICANT = env.int("KIPRIS_MAX_TOTAL_PER_APPLICANT", default=300_000)
# Pages of each checkpoint one task fetches before it queues the rest again (bounded batches keep tasks well
# under their time limit).
KIPRIS_PAGES_PER_TASK = env.int("KIPRIS_PAGES_PER_TASK", default=5)
# ingest: requests one worker process keeps in flight, across the pages and searches of its task, and the
# runs or checkpoints per task (the old harvester's 5: at 200 ms a round trip, four processes can then
# reach the 20/s limit); the global token bucket still bounds the rate (bench/ingest_rate.py,
# docs/BENCHMARKS.md).
KIPRIS_CONCURRENCY = env.int("KIPRIS_CONCURRENCY", default=5)
# Circuit breaker: this many consecutive failed requests open it for KIPRIS_CIRCUIT_OPEN_SECONDS.
KIPRIS_CIRCUIT_FAILURES = env.int("KIPRIS_CIRCUIT_FAILURES", default=10)
KIPRIS_CIRCUIT_OPEN_SECONDS = env.int("KIPRIS_CIRCUIT_OPEN_SECONDS", default=300)
# How long a task owns a checkpoint without renewing it; after that a redelivered or resumed task may take over.
KIPRIS_CHECKPOINT_LEASE_SECONDS = env.int("KIPRIS_CHECKPOINT_LEASE_SECONDS", default=300)

# --- monitoring
# Seconds between host agent samples (1-60): 5 s shows a spike without a database row per second.
MONITORING_AGENT_INTERVAL = env.float("MONITORING_AGENT_INTERVAL", default=5.0)
# Samples per database write, and the longest a sample waits for one: few, cheap INSERTs.
MONITORING_AGENT_BATCH_SIZE = env.int("MONITORING_AGENT_BATCH_SIZE", default=12)
MONITORING_AGENT_FLUSH_SECONDS = env.float("MONITORING_AGENT_FLUSH_SECONDS", default=30.0)
# Samples kept in memory while the database is down (a day at 5 s); older ones are dropped and counted.
MONITORING_AGENT_MAX_PENDING = env.int("MONITORING_AGENT_MAX_PENDING", default=17280)
# Top processes are the agent's costliest read (~8 ms for 100 processes): at most this often.
MONITORING_PROCESS_INTERVAL = env.float("MONITORING_PROCESS_INTERVAL", default=5.0)
# The name the host agent reports under (default: the machine's host name; containers set the host's).
MONITORING_HOST_NAME = env.str("PIPEWATCH_HOST_NAME", default="")
# The agent's own node_exporter-style port (0 turns it off); 9101 sits beside node_exporter's 9100.
MONITORING_AGENT_METRICS_PORT = env.int("MONITORING_AGENT_METRICS_PORT", default=9101)
MONITORING_AGENT_METRICS_ADDR = env.str("MONITORING_AGENT_METRICS_ADDR", default="127.0.0.1")
# Retention of host samples, by age and by rows per host (a week at 1 s is 604,800 rows).
MONITORING_RETENTION_DAYS = env.int("MONITORING_RETENTION_DAYS", default=7)
MONITORING_RETENTION_MAX_ROWS = env.int("MONITORING_RETENTION_MAX_ROWS", default=700_000)
MONITORING_PURGE_BATCH = env.int("MONITORING_PURGE_BATCH", default=10_000)
# The hourly roll-up (monitoring.HostHour): each run re-reads this many hours before the last hour it reached,
# so samples an agent sends late (its in-memory queue after a database outage) are counted; kept this long
# (a year of hours is 8,760 rows per host).
MONITORING_ROLLUP_LATE_HOURS = env.int("MONITORING_ROLLUP_LATE_HOURS", default=6)
MONITORING_ROLLUP_RETENTION_DAYS = env.int("MONITORING_ROLLUP_RETENTION_DAYS", default=365)
# A host is "reporting" when its latest sample is younger than this many of its intervals (plus 10 s).
MONITORING_HOST_STALE_INTERVALS = env.int("MONITORING_HOST_STALE_INTERVALS", default=3)
# Health: a passing component check is reused this long (shared in Redis), so /health stays fast.
HEALTH_CACHE_SECONDS = env.float("HEALTH_CACHE_SECONDS", default=10.0)
# Host anomaly detection: minutes of 1-minute history the detector sees, and its method.
MONITORING_DETECT_HISTORY_MINUTES = env.int("MONITORING_DETECT_HISTORY_MINUTES", default=360)
# anomaly (issue 15): the NAB-measured default (docs/anomaly-detection.md)
MONITORING_DETECT_METHOD = env.str("MONITORING_DETECT_METHOD", default="likelihood")
# --- eventlogs (collector, raw archive, enrichment; docs/eventlogs.md)
# The raw archive (the data lake): gzip NDJSON under kind=/date=/hour=, never rewritten.
EVENTLOG_ARCHIVE_DIR = Path(env.str("EVENTLOG_ARCHIVE_DIR", default=str(VAR_DIR / "eventlogs" / "archive")))
# Archive partitions older than this are deleted daily (0 keeps them forever).
EVENTLOG_ARCHIVE_RETENTION_DAYS = env.int("EVENTLOG_ARCHIVE_RETENTION_DAYS", default=365)
# Largest request body, compressed or not (413 beyond); a 1,000-record batch is ~250 KB raw, ~40 KB gzip.
EVENTLOG_MAX_BODY_BYTES = env.int("EVENTLOG_MAX_BODY_BYTES", default=16 * 1024 * 1024)
# Largest single record: a longer line is archived and becomes a failed event (reason too_large).
EVENTLOG_MAX_RECORD_BYTES = env.int("EVENTLOG_MAX_RECORD_BYTES", default=64 * 1024)
# Collector throttle per client (token): 3000/min of 1,000-record batches is 50,000 records/s.
EVENTLOG_THROTTLE_RATE = env.str("EVENTLOG_THROTTLE_RATE", default="3000/min")
# gzip level of archive members: 1 compresses ~5x at a fraction of level 6's CPU (docs/BENCHMARKS.md).
EVENTLOG_ARCHIVE_GZIP_LEVEL = env.int("EVENTLOG_ARCHIVE_GZIP_LEVEL", default=1)
# A batch archived this long ago and not enriched is queued again (broker outage, lost message).
EVENTLOG_REQUEUE_AFTER_SECONDS = env.int("EVENTLOG_REQUEUE_AFTER_SECONDS", default=60)
# Health and the alert: enrichment is lagging when the oldest unenriched batch is older than this.
EVENTLOG_MAX_LAG_SECONDS = env.int("EVENTLOG_MAX_LAG_SECONDS", default=300)
# eventlogs behaviour detection (issue 11): an account is flagged when its score (decades of likelihood ratio
# against its population's own rate) reaches this; the highest normal score on seeds the tests do not use
# was 5.3, a run of odd keys (docs/eventlogs.md, docs/BENCHMARKS.md).
EVENTLOG_BEHAVIOUR_THRESHOLD = env.float("EVENTLOG_BEHAVIOUR_THRESHOLD", default=6.0)

# Web request, latency and database metrics for every request (first, so it times the whole stack).
MIDDLEWARE.insert(0, "monitoring.middleware.PrometheusMiddleware")

# --- aiops (analyze, custom metrics, capacity, incidents, Alertmanager receiver)
# analyze: most points in one series and largest request body (bytes).
AIOPS_ANALYZE_MAX_POINTS = env.int("AIOPS_ANALYZE_MAX_POINTS", default=50_000)
AIOPS_ANALYZE_MAX_BYTES = env.int("AIOPS_ANALYZE_MAX_BYTES", default=4 * 1024 * 1024)
# analyze is CPU-heavy (STL, Theil-Sen): its own throttle rate per user (or address when anonymous).
AIOPS_ANALYZE_THROTTLE = env.str("AIOPS_ANALYZE_THROTTLE", default="60/min")
# Custom metrics: points per POST, label keys per series, and how long points are kept.
AIOPS_METRICS_MAX_POINTS = env.int("AIOPS_METRICS_MAX_POINTS", default=100_000)
AIOPS_METRICS_MAX_LABELS = env.int("AIOPS_METRICS_MAX_LABELS", default=10)
AIOPS_METRICS_RETENTION_DAYS = env.int("AIOPS_METRICS_RETENTION_DAYS", default=30)
# Retention (aiops.purge_old_records, daily). Alertmanager payloads are an archive for replaying the
# receiver and every re-send adds one: 30 days, like the other per-minute detail (detection results, custom
# points). Resolved incidents with their members and insights are the outage history operators review
# (quarterly criteria rebuilds, half-year reports) and only a few rows a day: 180 days.
AIOPS_ALERT_PAYLOAD_RETENTION_DAYS = env.int("AIOPS_ALERT_PAYLOAD_RETENTION_DAYS", default=30)
AIOPS_INCIDENT_RETENTION_DAYS = env.int("AIOPS_INCIDENT_RETENTION_DAYS", default=180)
# The streaming detector (anomaly.detectors) scoring custom series every minute. The robust z-score: its
# pickled state is ~3 KB a series (the ensemble's seasonal profiles are ~40 KB), which keeps the minute
# scoring of 10,000 series within its 10 s budget.
AIOPS_METRICS_DETECTOR = env.str("AIOPS_METRICS_DETECTOR", default="zscore")
# Capacity: trend windows (the short one reacts to a runaway fill, the long one to steady growth),
# the warning horizon, and the limits for host disk and memory (percent).
AIOPS_CAPACITY_WINDOWS = env.list("AIOPS_CAPACITY_WINDOWS", default=["6h", "7d"])
AIOPS_CAPACITY_WARN_SECONDS = env.int("AIOPS_CAPACITY_WARN_SECONDS", default=24 * 3600)
AIOPS_CAPACITY_DISK_LIMIT = env.float("AIOPS_CAPACITY_DISK_LIMIT", default=95.0)
AIOPS_CAPACITY_MEMORY_LIMIT = env.float("AIOPS_CAPACITY_MEMORY_LIMIT", default=95.0)
# Incidents, like Alertmanager's route: wait before the first message (collect the storm), the least
# time between messages about new members, and the reminder period of an unresolved incident.
AIOPS_GROUP_WAIT_SECONDS = env.int("AIOPS_GROUP_WAIT_SECONDS", default=30)
AIOPS_GROUP_INTERVAL_SECONDS = env.int("AIOPS_GROUP_INTERVAL_SECONDS", default=300)
AIOPS_REPEAT_INTERVAL_SECONDS = env.int("AIOPS_REPEAT_INTERVAL_SECONDS", default=4 * 3600)
# An event starting within this many seconds of an open incident's newest member joins it (time
# proximity); one sharing an attribute with it (host, site, group, org) joins within the longer window.
AIOPS_GROUP_PROXIMITY_SECONDS = env.int("AIOPS_GROUP_PROXIMITY_SECONDS", default=300)
AIOPS_GROUP_SHARE_SECONDS = env.int("AIOPS_GROUP_SHARE_SECONDS", default=3600)
# Send a "resolved" message when an incident resolves (Alertmanager's send_resolved).
AIOPS_SEND_RESOLVED = env_bool("AIOPS_SEND_RESOLVED", default=True)
# Alertmanager webhook receiver credentials: a bearer token and/or basic auth (empty: that way is off).
AIOPS_ALERTS_TOKEN = env.str("AIOPS_ALERTS_TOKEN", default="")
AIOPS_ALERTS_BASIC_USER = env.str("AIOPS_ALERTS_BASIC_USER", default="")
AIOPS_ALERTS_BASIC_PASSWORD = env.str("AIOPS_ALERTS_BASIC_PASSWORD", default="")
# anomaly's own message per event; off because aiops sends one per incident (listing its events) instead.
ANOMALY_EVENT_NOTIFICATIONS = env_bool("ANOMALY_EVENT_NOTIFICATIONS", default=False)

# --- aiops insight (aiops/insight): explanations of incidents, from rules always and an LLM when configured.
# The LLM is off unless both URL and model are set. Ollama on this host: http://127.0.0.1:11434/v1.
INSIGHT_LLM_URL = env.str("INSIGHT_LLM_URL", default="")
INSIGHT_LLM_MODEL = env.str("INSIGHT_LLM_MODEL", default="")
# A hosted API's key (a secret: environment only, never exported or logged); Ollama needs none.
INSIGHT_LLM_API_KEY = env.str("INSIGHT_LLM_API_KEY", default="")
# Per HTTP call: a small local model on 2 CPU cores takes 10-30 s for ~300 output tokens.
INSIGHT_LLM_TIMEOUT_SECONDS = env.float("INSIGHT_LLM_TIMEOUT_SECONDS", default=45.0)
# Retries after a transient failure (timeout, connection, 5xx, 429); 4xx are never retried.
INSIGHT_LLM_RETRIES = env.int("INSIGHT_LLM_RETRIES", default=1)
# The answer is ~1 kB of JSON; anything near this limit is not an answer.
INSIGHT_LLM_MAX_RESPONSE_BYTES = env.int("INSIGHT_LLM_MAX_RESPONSE_BYTES", default=32_768)
INSIGHT_LLM_MAX_TOKENS = env.int("INSIGHT_LLM_MAX_TOKENS", default=500)
# Consecutive transient failures that open the circuit, and how long it stays open (the rules answer meanwhile).
INSIGHT_LLM_CIRCUIT_FAILURES = env.int("INSIGHT_LLM_CIRCUIT_FAILURES", default=3)
INSIGHT_LLM_CIRCUIT_OPEN_SECONDS = env.int("INSIGHT_LLM_CIRCUIT_OPEN_SECONDS", default=300)
# HTTP calls per clock hour across all workers (retries and repairs count); 0 = unlimited.
INSIGHT_LLM_HOURLY_BUDGET = env.int("INSIGHT_LLM_HOURLY_BUDGET", default=60)
# Where runbooks live (Markdown; retrieved by keyword score).
INSIGHT_RUNBOOK_DIR = Path(env.str("INSIGHT_RUNBOOK_DIR", default=str(BASE_DIR / "docs" / "runbooks")))
# Incidents of this severity and above are explained automatically when they open ("off": on demand only).
INSIGHT_AUTO_MIN_SEVERITY = env.str("INSIGHT_AUTO_MIN_SEVERITY", default="warning")
# The incident's first notification waits at most this long for its insight (0: never waits).
INSIGHT_NOTIFY_WAIT_SECONDS = env.float("INSIGHT_NOTIFY_WAIT_SECONDS", default=20.0)
# The context sent to an LLM is cut to about this many tokens (4 characters each): small local models
# have 2-8 k token windows and slow down with every token of prompt.
INSIGHT_CONTEXT_TOKENS = env.int("INSIGHT_CONTEXT_TOKENS", default=1500)
# Insight tasks have their own queue and worker (Procfile `insight`), so a model that takes a minute to
# answer never holds a detection worker.
CELERY_TASK_QUEUES.append(Queue("insight"))
PIPEWATCH_QUEUE_PREFIXES.insert(0, ("aiops.explain", "insight"))
