"""Podium's one settings module, driven by environment variables.

With nothing set, Podium runs on embedded defaults: SQLite (WAL, busy timeout) and a
filesystem Celery queue served by a real worker process, so no service is needed.
`DATABASE_URL` and `CELERY_BROKER_URL` switch to PostgreSQL and Redis. With
`PODIUM_ENV=production` every secret and URL must be given; a missing one stops start-up
with its name, and the security settings pass `manage.py check --deploy` behind a
TLS-terminating proxy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

from config.env import env_bool, env_int, env_list, env_str
from runners.artifact_store import ArtifactStoreError, parse_artifact_url
from runners.spec import DEV_WORKER_KEY

BASE_DIR = Path(__file__).resolve().parents[2]

PODIUM_ENV = env_str("PODIUM_ENV", default="development")
if PODIUM_ENV not in {"development", "test", "production"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"PODIUM_ENV must be development, test or production, not {PODIUM_ENV!r}."
    )
PRODUCTION = PODIUM_ENV == "production"

# Where the embedded defaults keep their state (database, queue, artifacts).
VAR_DIR = Path(env_str("PODIUM_VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env_str(
    "SECRET_KEY",
    default="django-insecure-development-key-never-used-in-production",
    required=PRODUCTION,
)
DEBUG = env_bool("DEBUG", default=not PRODUCTION and PODIUM_ENV != "test")
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"], required=PRODUCTION
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "catalog",
    "tracking",
    "dashboard",
    "api",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.http_errors.ApiErrorBodyMiddleware",  # JSON, not HTML, error pages under /api/
    "config.db_outage.DatabaseOutageMiddleware",  # 503 + Retry-After while the DB is down
    "config.http_errors.RequestSizeLimitMiddleware",  # 413 before a large body is read
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.login_throttle.LoginThrottleMiddleware",  # 429 after repeated failed logins
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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


def _database_config() -> dict[str, Any]:
    url = env_str("DATABASE_URL", default="", required=PRODUCTION)
    if url:
        config: dict[str, Any] = dict(
            dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", default=60))
        )
        config["CONN_HEALTH_CHECKS"] = True
        return config
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "podium.sqlite3",
        "OPTIONS": {
            # The worker process writes too: WAL lets readers proceed during a write, the
            # timeout waits out a concurrent writer, and IMMEDIATE takes the write lock at
            # BEGIN so two writers never deadlock upgrading from a read lock.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
        },
    }


DATABASES = {"default": _database_config()}


def _cache_config() -> dict[str, Any]:
    url = env_str("CACHE_URL", default="")
    if url.startswith("redis"):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "podium"}


# Computed leaderboards are cached; their keys change whenever their runs change.
CACHES = {"default": _cache_config()}
LOGIN_URL = "admin:login"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Collected files, served by WhiteNoise; unset in development, where the finders serve them.
_static_root = env_str("STATIC_ROOT", default="")
STATIC_ROOT = Path(_static_root) if _static_root else None
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "artifacts"

# --- Celery -----------------------------------------------------------------------------
# The embedded default is kombu's filesystem transport: a real queue on disk that a real
# worker process consumes, so `make demo` needs no Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", default="filesystem://", required=PRODUCTION)
QUEUE_DIR = VAR_DIR / "queue"
if CELERY_BROKER_URL.startswith("filesystem"):
    QUEUE_DIR.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = (
    {
        "data_folder_in": str(QUEUE_DIR),
        "data_folder_out": str(QUEUE_DIR),
        "control_folder": str(VAR_DIR / "queue-control"),
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {
        # Longer than the longest job, so Redis never redelivers a running GPU job.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", default=12 * 3600),
    }
)
# Job results travel back as messages to the platform's own tasks, never through a result
# backend; the backend only serves round-trip probes such as `platform.ping`.
CELERY_RESULT_BACKEND = env_str(
    "CELERY_RESULT_BACKEND",
    default=(
        f"file://{VAR_DIR / 'results'}"
        if CELERY_BROKER_URL.startswith("filesystem")
        else CELERY_BROKER_URL
    ),
)
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "platform"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The platform's periodic tasks (run by `celery beat`).
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "platform.reap_stale_jobs", "schedule": 30.0},
}

# --- Podium -----------------------------------------------------------------------------
# A running job whose worker has been silent this long is requeued (or failed when its
# attempts are used up). Workers send a heartbeat every PODIUM_HEARTBEAT_INTERVAL_S.
PODIUM_HEARTBEAT_TIMEOUT_S = env_int("PODIUM_HEARTBEAT_TIMEOUT_S", default=120)
# Jobs a user may have dispatched at once; more wait, queued, for a free slot.
# A run tracked from a user's own script (podium.init) with no metric point or finish for
# this long is failed: its script was killed or its machine lost.
PODIUM_TRACKED_RUN_TIMEOUT_S = env_int("PODIUM_TRACKED_RUN_TIMEOUT_S", default=24 * 3600)
PODIUM_MAX_ACTIVE_JOBS_PER_USER = env_int("PODIUM_MAX_ACTIVE_JOBS_PER_USER", default=8)
# Local benchmark data in the hub's field format: <dir>/<benchmark>/<task>/<split>.jsonl.
PODIUM_DATA_DIR = env_str("PODIUM_DATA_DIR", default="")
# Staff-uploaded private gold labels, same layout; never under MEDIA_ROOT, never served.
PODIUM_PRIVATE_DIR = Path(env_str("PODIUM_PRIVATE_DIR", default=str(VAR_DIR / "private")))

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Hashed, revocable API tokens first, so an unauthenticated request is answered 401;
    # the session serves the dashboard's own calls.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Podium API",
    "DESCRIPTION": "Submit runs, request jobs and read leaderboards.",
    "VERSION": "1",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", default="INFO")},
}

# --- Reliability and abuse limits (issue #9: config.db_outage, http_errors, login_throttle)
# A request that finds the database down is answered 503 with this Retry-After (seconds).
PODIUM_DB_OUTAGE_RETRY_AFTER_S = env_int("PODIUM_DB_OUTAGE_RETRY_AFTER_S", default=5)
# The largest predictions or gold-label file accepted, in bytes, and its longest line.
PODIUM_MAX_UPLOAD_BYTES = env_int("PODIUM_MAX_UPLOAD_BYTES", default=32 * 1024 * 1024)
PODIUM_MAX_LINE_CHARS = env_int("PODIUM_MAX_LINE_CHARS", default=1024 * 1024)
# Any request body, judged by Content-Length (413 above it). A predictions file travels as a
# JSON string, which escaping can make up to twice as long.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int(
    "DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * PODIUM_MAX_UPLOAD_BYTES + 1024 * 1024
)
# Failed logins from one client within the window before its login attempts get 429 for
# the lockout; counted in the default cache (share it between processes: CACHE_URL).
PODIUM_LOGIN_MAX_FAILURES = env_int("PODIUM_LOGIN_MAX_FAILURES", default=5)
PODIUM_LOGIN_FAILURE_WINDOW_S = env_int("PODIUM_LOGIN_FAILURE_WINDOW_S", default=15 * 60)
PODIUM_LOGIN_LOCKOUT_S = env_int("PODIUM_LOGIN_LOCKOUT_S", default=15 * 60)
# Proxies in front of Podium that append the client's address to X-Forwarded-For (0: none,
# REMOTE_ADDR is the client).
PODIUM_TRUSTED_PROXY_COUNT = env_int("PODIUM_TRUSTED_PROXY_COUNT", default=0)
# API pages: a huge ?limit or ?offset is bounded, not a database error.
REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"] = "api.pagination.BoundedLimitOffsetPagination"
# The API's schema documents the errors these (and authentication, throttling) give anywhere.
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "config.http_errors.document_common_errors",
]

# --- Accounts, e-mail and API throttling (issue #7: accounts app, api.throttles) -------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "dashboard:home"
# Password-reset mail: printed to the console unless an SMTP server is configured.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    default=(
        "django.core.mail.backends.smtp.EmailBackend"
        if PRODUCTION
        else "django.core.mail.backends.console.EmailBackend"
    ),
)
EMAIL_HOST = env_str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env_int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default="podium@localhost")
# API request rates per client ("N/second|minute|hour|day"; empty: unlimited). "submissions"
# is the stricter scope of POSTs that create runs; "accounts" covers sign-up and password
# reset; "off" lifts a limit. Tests start unlimited and set the rates they exercise.
_THROTTLE_DEFAULTS = (
    {"anon": "", "user": "", "submissions": "", "accounts": ""}
    if PODIUM_ENV == "test"
    else {
        "anon": "120/minute",
        "user": "600/minute",
        "submissions": "30/minute",
        "accounts": "10/hour",
    }
)
PODIUM_THROTTLE_RATES: dict[str, str | None] = {
    scope: rate if rate and rate != "off" else None
    for scope, default in _THROTTLE_DEFAULTS.items()
    for rate in [env_str(f"PODIUM_THROTTLE_{scope.upper()}", default=default)]
}
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "api.throttles.AnonThrottle",
    "api.throttles.UserThrottle",
]
# Clients are told apart by address behind the same proxies as the login throttle.
REST_FRAMEWORK["NUM_PROXIES"] = PODIUM_TRUSTED_PROXY_COUNT
# The run-status choices keep one stable name in the OpenAPI schema, whatever other
# "status" fields (e.g. a finish request's succeeded/failed) the API grows.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {"RunStatusEnum": "tracking.status.RunStatus"}

# --- Artifact store and signed worker messages (issues #4, #9) -------------------------
# The same variables as on GPU workers (runners.artifact_store): PODIUM_ARTIFACT_URL
# (s3://bucket/prefix) selects an S3-compatible bucket, PODIUM_S3_ENDPOINT_URL its endpoint
# (MinIO, Ceph, R2), boto3 takes credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
# (or an instance role). Without it artifacts are files under MEDIA_ROOT, the folder a
# worker names as PODIUM_ARTIFACT_DIR. Artifacts recorded in either stay readable.
PODIUM_ARTIFACT_URL = env_str("PODIUM_ARTIFACT_URL", default="")
if PODIUM_ARTIFACT_URL:
    from importlib.util import find_spec

    from django.core.exceptions import ImproperlyConfigured

    try:
        parse_artifact_url(PODIUM_ARTIFACT_URL)
    except ArtifactStoreError as error:
        raise ImproperlyConfigured(str(error)) from None
    if find_spec("boto3") is None:
        raise ImproperlyConfigured("PODIUM_ARTIFACT_URL names an S3 bucket: install boto3.")
PODIUM_S3_ENDPOINT_URL = env_str("PODIUM_S3_ENDPOINT_URL", default="")
PODIUM_S3_REGION = env_str("AWS_DEFAULT_REGION", default="")
MEDIA_ROOT = Path(env_str("PODIUM_ARTIFACT_DIR", default=str(MEDIA_ROOT)))
# The largest artifact accepted by the API's upload endpoint, in bytes (larger: 413).
PODIUM_MAX_ARTIFACT_BYTES = env_int("PODIUM_MAX_ARTIFACT_BYTES", default=1024**3)
# Results, metric batches and heartbeats from GPU workers are signed with this shared key
# (HMAC-SHA256, runners.spec.sign_message); anything unsigned or forged is refused.
PODIUM_WORKER_KEY = env_str("PODIUM_WORKER_KEY", default=DEV_WORKER_KEY, required=PRODUCTION)
if PRODUCTION:
    from urllib.parse import urlsplit

    from django.core.exceptions import ImproperlyConfigured

    if PODIUM_WORKER_KEY == DEV_WORKER_KEY:
        raise ImproperlyConfigured(
            "PODIUM_WORKER_KEY is the development key; set a secret of your own in production."
        )
    _broker = urlsplit(CELERY_BROKER_URL)
    if _broker.scheme in {"redis", "rediss"} and not _broker.password:
        raise ImproperlyConfigured(
            "CELERY_BROKER_URL names a Redis broker without a password; in production use "
            "redis://:PASSWORD@host:6379/0 (anyone who reaches the broker could read the queue)."
        )

# --- Production hardening (behind a TLS-terminating proxy) -----------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    # /healthz is probed over plain HTTP from inside the deployment.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
