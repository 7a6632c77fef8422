"""Settings come from the environment (django-environ); see README "Configuration"."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)


def _generated_once(name: str, make: Callable[[], str]) -> str:
    """A development value kept in var/ so it survives restarts; never used with DEBUG off."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _required_in_production(name: str, make: Callable[[], str]) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{name} is not set. With DEBUG off the portal refuses to start without it; "
            f"set the environment variable {name} (see README, Configuration)."
        )
    return _generated_once(name.lower(), make)


SECRET_KEY = _required_in_production("SECRET_KEY", lambda: secrets.token_urlsafe(50))

# The first key encrypts, every key decrypts (MultiFernet); comma-separated.
FIELD_ENCRYPTION_KEYS = [
    key.strip()
    for key in _required_in_production(
        "FIELD_ENCRYPTION_KEYS", lambda: Fernet.generate_key().decode()
    ).split(",")
    if key.strip()
]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files: /api/docs/ needs no internet
    "django_q",
    "axes",  # admin login lock-out, see AXES_* below
    "passportal",
    "directory",
    "provisioning",
    "notifications",
    "scim",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "passportal.csp.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a refused login into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out username+address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "passportal.urls"
WSGI_APPLICATION = "passportal.wsgi.application"

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
                "notifications.context_processors.bell",
            ],
        },
    },
]

_KNOWN_DB_SCHEMES = ("sqlite", "postgres", "postgresql", "pgsql", "psql", "mysql", "mysql2")


def _database_from_env() -> dict:
    url = env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in _KNOWN_DB_SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL is malformed: expected scheme://..., one of "
            f"{', '.join(_KNOWN_DB_SCHEMES)}, e.g. postgres://user@127.0.0.1:5432/portal"
        )
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several kinds; the message is what matters
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from exc
    if not config.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL is malformed: it names no database")
    if config["ENGINE"].endswith("sqlite3"):
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # Several processes (web, qcluster) share the file: wait for locks instead of failing.
        config.setdefault("OPTIONS", {})["timeout"] = 30
        # Transactions take the write lock when they begin, so a second writer waits (timeout above)
        # instead of failing at once with "database is locked" when its read would turn into a write.
        config["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
        # A file, not memory, so a test can share its database with a real qcluster process.
        config["TEST"] = {"NAME": str(VAR_DIR / f"test-portal-{os.getpid()}.sqlite3")}
    config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    return config


DATABASES = {"default": _database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A cache every process shares (activation rate limits): the database by default, or CACHE_URL.
CACHES = {"default": env.cache_url("CACHE_URL", default="dbcache://portal_cache")}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))

# Production hardening; each can be turned off for a TLS-terminating proxy or local tests.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy on every response (passportal/csp.py; same shape as Django 6.0's SECURE_CSP).
# Our own origin only, no inline script or style anywhere; data: images for the icons inside Swagger UI's CSS.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# Admin login lock-out (django-axes): after ADMIN_LOGIN_FAILURE_LIMIT wrong passwords for one username from
# one address, that pair is refused (429) for ADMIN_LOGIN_LOCKOUT_MINUTES, even with the right password; each
# further try restarts the wait. Another address, or another username, is not affected, so an attacker cannot
# lock staff out from their own desks. `manage.py axes_reset` lifts every lock-out at once.
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a right password (outside a lock-out) forgets the earlier mistakes
AXES_LOCKOUT_CALLABLE = "passportal.lockout.locked_out_response"  # the admin-styled 429 page
# The address as the activation rate limits see it: behind TRUSTED_PROXIES, the client's, not the proxy's.
AXES_CLIENT_IP_CALLABLE = "passportal.addresses.client_address"
# Full referrer to our own pages (CSRF's origin check needs it: with no-referrer, Chromium posts
# forms with "Origin: null"), none to other sites, so no page's address leaks out.
SECURE_REFERRER_POLICY = "same-origin"

# django-q2: the ORM broker by default so nothing else must be installed; Redis via Q_REDIS_URL.
Q_CLUSTER = {
    "name": "portal",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=1800),
    "retry": env.int("Q_RETRY", default=2100),  # must exceed timeout, or a slow task runs twice
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "poll": 1,
    "orm": "default",
}
if env.str("Q_REDIS_URL", default=""):
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = env.str("Q_REDIS_URL")

# One page size for every list that can hold many users: the admin's change lists (passportal/admin.py), a
# run's and a confirmation's list of changes, and the API's lists.
LIST_PAGE_SIZE = 100

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "provisioning.api.authentication.HashedTokenAuthentication",  # tokens stored as digests (R25)
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": LIST_PAGE_SIZE,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Auto-provisioning portal API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files, not a CDN: the docs work with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "/favicon.ico",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status": each choice set gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {"AgentUploadStatusEnum": "directory.models.UploadStatus",
                            # A user's status shows on users and on a client's Site Admins: one name for both.
                            "PortalUserStatusEnum": "passportal.models.UserStatus"},
}

ACTIVATION_TOKEN_DAYS = env.int("ACTIVATION_TOKEN_DAYS", default=7)
# The email outbox: retries back off from the base to the cap; a row claimed longer than the timeout (its
# sender died) is sent again; after the most attempts an email is failed and staff are told.
OUTBOX_RETRY_BASE_SECONDS = env.int("OUTBOX_RETRY_BASE_SECONDS", default=60)
OUTBOX_RETRY_MAX_SECONDS = env.int("OUTBOX_RETRY_MAX_SECONDS", default=3600)
OUTBOX_SENDING_TIMEOUT_SECONDS = env.int("OUTBOX_SENDING_TIMEOUT_SECONDS", default=900)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)
# What went out is recorded after this many messages or this many seconds, whichever comes first (notifications/outbox).
OUTBOX_RECORD_EVERY = env.int("OUTBOX_RECORD_EVERY", default=100)
OUTBOX_RECORD_AFTER_SECONDS = env.float("OUTBOX_RECORD_AFTER_SECONDS", default=0.25)
if OUTBOX_RECORD_EVERY < 1 or OUTBOX_RECORD_AFTER_SECONDS <= 0:
    raise ImproperlyConfigured("OUTBOX_RECORD_EVERY must be at least 1 and OUTBOX_RECORD_AFTER_SECONDS above 0.")
# Refused activation links per address (and per token prefix) within the window, then 429.
ACTIVATION_RATE_LIMIT = env.int("ACTIVATION_RATE_LIMIT", default=20)
ACTIVATION_RATE_WINDOW_SECONDS = env.int("ACTIVATION_RATE_WINDOW_SECONDS", default=600)
# How long the choose-a-password page stays open after the link was followed.
ACTIVATION_FORM_SECONDS = env.int("ACTIVATION_FORM_SECONDS", default=1800)
# End-user sign-in: wrong passwords per address and email within the window, then 429.
ACCOUNT_SIGNIN_RATE_LIMIT = env.int("ACCOUNT_SIGNIN_RATE_LIMIT", default=10)
ACCOUNT_SIGNIN_RATE_WINDOW_SECONDS = env.int("ACCOUNT_SIGNIN_RATE_WINDOW_SECONDS", default=900)
# Reverse proxies (addresses or networks) whose X-Forwarded-For is believed when counting attempts.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Error reports hide every POST field named like a secret, whatever the view (R25).
DEFAULT_EXCEPTION_REPORTER_FILTER = "passportal.reporting.SecretsExceptionReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"}},
    "root": {"handlers": ["stdout"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Run django-q2 tasks inline in the calling process (tests, single-process demos); off in production.
TASKS_RUN_INLINE = env.bool("TASKS_RUN_INLINE", default=False)
# A running sync with no heartbeat for this long is taken as dead, so the next run can start (R23).
# PostgreSQL: how long an on-prem agent's request waits for a lock (a run's apply) before it is answered 503
# with Retry-After and sent again; SQLite's busy timeout (30 s, above) does the same there.
AGENT_DB_LOCK_TIMEOUT_SECONDS = env.float("AGENT_DB_LOCK_TIMEOUT_SECONDS", default=30)
SYNC_STALE_AFTER_SECONDS = env.int("SYNC_STALE_AFTER_SECONDS", default=Q_CLUSTER["timeout"])

# Entra login and Graph hosts allowed beyond Microsoft's own (a sovereign proxy, a test stand-in): comma-separated
# "host" (any port) or "host:port". An integration's client secret and tokens go to no other host (R26).
ENTRA_ALLOWED_HOSTS = [host.strip().lower() for host in env.list("ENTRA_ALLOWED_HOSTS", default=[]) if host.strip()]
# Graph throttling (429, Retry-After) and transient failures (5xx) are waited out before a run gives up (R21): at most
# this many attempts per request, each wait capped; without Retry-After the wait doubles from the base, plus jitter.
ENTRA_RETRY_MAX_ATTEMPTS = env.int("ENTRA_RETRY_MAX_ATTEMPTS", default=6)
ENTRA_RETRY_CAP_SECONDS = env.float("ENTRA_RETRY_CAP_SECONDS", default=30.0)
ENTRA_BACKOFF_BASE_SECONDS = env.float("ENTRA_BACKOFF_BASE_SECONDS", default=1.0)
# More users changed than this in one incremental Entra round: one full read is cheaper than two requests each.
ENTRA_INCREMENTAL_CHANGE_LIMIT = env.int("ENTRA_INCREMENTAL_CHANGE_LIMIT", default=1000)
# Graph requests one Entra read has in flight at once (the members of that many AUs read together; 1: one by one).
# Graph meters directory reads per app and tenant (3,500 to 8,000 resource units per 10 s, 1 unit a member page):
# 32 at 100 ms a page stays under the smallest tenant's bucket; a 429's Retry-After holds every request of the read.
ENTRA_READ_CONCURRENCY = env.int("ENTRA_READ_CONCURRENCY", default=8)
if not 1 <= ENTRA_READ_CONCURRENCY <= 32:
    raise ImproperlyConfigured(f"ENTRA_READ_CONCURRENCY must be from 1 to 32, not {ENTRA_READ_CONCURRENCY}.")

# What one on-prem agent token can make the portal store and do (README, Security): a stolen token, or an agent
# gone wrong, fills neither the database nor the workers. The defaults fit a 300,000-user directory with room.
AGENT_CHUNK_MAX_BYTES = env.int("AGENT_CHUNK_MAX_BYTES", default=8 * 1024 * 1024)  # one request body
AGENT_UPLOAD_MAX_RECORDS = env.int("AGENT_UPLOAD_MAX_RECORDS", default=500_000)  # folders + users of one upload
AGENT_UPLOAD_MAX_BYTES = env.int("AGENT_UPLOAD_MAX_BYTES", default=512 * 1024 * 1024)  # their JSON, stored
AGENT_UPLOAD_EXPIRE_MINUTES = env.int("AGENT_UPLOAD_EXPIRE_MINUTES", default=60)  # an open upload with no chunk
AGENT_REQUESTS_PER_MINUTE = env.int("AGENT_REQUESTS_PER_MINUTE", default=120)  # per integration, then 429
# An agent integration with no complete upload for this long raises a notification (twice the agent's 6 hours), and
# a Force Re-sync or single-user resync the agent has not answered this long fails as "agent not responding".
AGENT_QUIET_AFTER_HOURS = env.float("AGENT_QUIET_AFTER_HOURS", default=12.0)
AGENT_REQUEST_TIMEOUT_MINUTES = env.float("AGENT_REQUEST_TIMEOUT_MINUTES", default=15.0)
# A preview or folder read a person waits for on a page: an agent that has not picked it up this long (it polls every
# minute) is "not responding"; one that has is given until AGENT_REQUEST_TIMEOUT_MINUTES to send the read.
AGENT_PREVIEW_TIMEOUT_MINUTES = env.float("AGENT_PREVIEW_TIMEOUT_MINUTES", default=3.0)
# A rotated agent token keeps working this long, so the agent can be given the new one without a gap.
AGENT_TOKEN_GRACE_MINUTES = env.float("AGENT_TOKEN_GRACE_MINUTES", default=10.0)
# An AD run the schedule asks for reads only what changed since the last good run (uSNChanged, provisioning.ad_reads);
# everything is read again when the last full read is this old (and at a Force Re-sync, a mapping applied, a new DC).
AD_FULL_READ_EVERY_HOURS = env.float("AD_FULL_READ_EVERY_HOURS", default=24.0)

# SCIM (scim/): a rotated token keeps working this long; SCIM disables are counted over this window for the
# mass-disable brake (the integration's threshold, as for a run).
SCIM_TOKEN_GRACE_MINUTES = env.int("SCIM_TOKEN_GRACE_MINUTES", default=60)
SCIM_DISABLE_WINDOW_MINUTES = env.int("SCIM_DISABLE_WINDOW_MINUTES", default=60)
