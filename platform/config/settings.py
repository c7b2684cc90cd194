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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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
SPECTACULAR_SETTINGS = {
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
