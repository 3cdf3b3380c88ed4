"""One settings file, read from the environment (see README "Configuration").

Every knob has a safe embedded default for the demo: SQLite, a filesystem Celery
broker and the sandbox Okta org on 127.0.0.1. ``PORTAL_ENV=production`` turns the
defaults off for what must be configured (secret key, database, broker, Okta).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import overload
from urllib.parse import urlparse

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))


# A setting with a default is a str; one without may be None.
@overload
def env(name: str, default: str) -> str: ...
@overload
def env(name: str, default: None = None) -> str | None: ...
def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool = False) -> bool:
    raw = env(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


PORTAL_ENV = env("PORTAL_ENV", "demo")
if PORTAL_ENV not in {"demo", "production"}:
    raise ImproperlyConfigured("PORTAL_ENV must be 'demo' or 'production'")
PRODUCTION = PORTAL_ENV == "production"


def required(name: str, demo_default: str) -> str:
    value = env(name)
    if value is None:
        if PRODUCTION:
            raise ImproperlyConfigured(f"{name} must be set when PORTAL_ENV=production")
        return demo_default
    return value


DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    # Debug pages show settings, SQL and tracebacks to whoever causes an error.
    raise ImproperlyConfigured("DEBUG must be off when PORTAL_ENV=production")
LOG_LEVEL = (env("LOG_LEVEL", "INFO") or "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
if PRODUCTION and LOG_LEVEL == "DEBUG":
    # Libraries log requests (headers, tokens) at DEBUG: never in production.
    raise ImproperlyConfigured("LOG_LEVEL=DEBUG is refused when PORTAL_ENV=production")
SECRET_KEY = required("SECRET_KEY", "django-insecure-demo-only-never-use-in-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "django_htmx",
    "template_partials",
    "ninja",  # serves the API docs page from its bundled files, never a CDN
    "portal",
    "federation",
    "requests_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.core.headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # After allauth's: ends stale sessions, then holds MFA-less privileged users at set-up.
    "portal.accounts.middleware.SessionPolicyMiddleware",
    "portal.accounts.middleware.RequireMfaMiddleware",
    "portal.accounts.middleware.AuditorsReadOnlyAdminMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.audit.AuditContextMiddleware",
    "portal.method_not_allowed.MethodNotAllowedPage",
    "portal.core.db.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.portal",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        required("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_health_checks=True,
    )
}
_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")
# A connection per thread, kept for a minute and checked before a request reuses it (a
# restarted server costs one reconnect, not a 500): a new PostgreSQL connection for every
# request and task cost ~5 ms idle and ~33 ms under an incident's load
# (docs/performance.md). SQLite (the demo) opens one cheaply.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0 if _SQLITE else 60)
if _SQLITE:
    # Writers take the lock at BEGIN so concurrent audit appends queue, not fail.
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20
# The database owner (docs/security.md "Database roles"): `manage.py migrate` connects
# as this role; the application (DATABASE_URL) as a runtime role that may not change
# the schema, nor UPDATE, DELETE or TRUNCATE the audit log.
DATABASE_OWNER_URL = env("DATABASE_OWNER_URL", "")
if DATABASE_OWNER_URL:
    DATABASES["owner"] = dj_database_url.parse(DATABASE_OWNER_URL)
    # Tests use one test database under both names.
    DATABASES["owner"]["TEST"] = {"MIRROR": "default"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", "none")
# Accounts are created by admins: emergency access is not for whoever signs up.
ACCOUNT_ADAPTER = "portal.accounts.adapter.ClosedSignupAdapter"
ACCOUNT_LOGOUT_ON_GET = False
# No "remember me": a session ends at SESSION_ABSOLUTE_HOURS / SESSION_IDLE_MINUTES.
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_REAUTHENTICATION_TIMEOUT = env_int("STEP_UP_SECONDS", 300)
SOCIALACCOUNT_ADAPTER = "portal.accounts.adapter.OktaSocialAdapter"
# Okta users are created by admins in the portal too; the Okta sign-in only binds.
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False

# --- Who may act: MFA, Okta sign-in, step-up, sessions, lockout (docs/security.md) ----
# Portal roles that must have a second factor: approver, auditor, staff; or "all".
MFA_REQUIRED_FOR = env_list("MFA_REQUIRED_FOR", "approver,auditor,staff")
if set(MFA_REQUIRED_FOR) - {"approver", "auditor", "staff", "all"}:
    raise ImproperlyConfigured("MFA_REQUIRED_FOR: a list of approver, auditor, staff, or 'all'")
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = env_bool("MFA_PASSKEY_LOGIN_ENABLED", True)
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", "Emergency Access Portal")
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not PRODUCTION
# Okta's id token says MFA was done there (amr contains "mfa"): does that count as
# the portal's second factor? True: Okta users need no local authenticator.
OKTA_AMR_SATISFIES_MFA = env_bool("OKTA_AMR_SATISFIES_MFA", True)
# Step-up: approving, denying, revoking, the failover, roles and tokens need a sign-in
# (password, second factor or Okta) within this many seconds.
STEP_UP_SECONDS = ACCOUNT_REAUTHENTICATION_TIMEOUT
SESSION_ABSOLUTE_HOURS = env_int("SESSION_ABSOLUTE_HOURS", 12)
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_HOURS * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# API tokens: lifetime when none is given, and the longest allowed (days).
API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 30)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 90)
if not 1 <= API_TOKEN_DEFAULT_DAYS <= API_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured("1 <= API_TOKEN_DEFAULT_DAYS <= API_TOKEN_MAX_DAYS")

# Sign in with Okta (OpenID Connect). The demo points at the sandbox org's endpoints.
OKTA_OIDC_ISSUER = env("OKTA_OIDC_ISSUER", "" if PRODUCTION else "http://127.0.0.1:8100")
OKTA_OIDC_CLIENT_ID = env("OKTA_OIDC_CLIENT_ID", "" if PRODUCTION else "portal-sandbox-client")
OKTA_OIDC_CLIENT_SECRET = env(
    "OKTA_OIDC_CLIENT_SECRET", "" if PRODUCTION else "portal-sandbox-secret"
)
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": (
            [
                {
                    "provider_id": "okta",
                    "name": "Okta",
                    "client_id": OKTA_OIDC_CLIENT_ID,
                    "secret": OKTA_OIDC_CLIENT_SECRET,
                    "settings": {
                        "server_url": OKTA_OIDC_ISSUER,
                        "fetch_userinfo": True,
                        "token_auth_method": "client_secret_post",
                    },
                }
            ]
            if OKTA_OIDC_ISSUER and OKTA_OIDC_CLIENT_ID
            else []
        ),
    }
}

# Lockout that cannot lock everyone out: per account, plus a generous per-IP limit,
# counted in the shared cache. Behind a TLS proxy the client IP comes from TRUSTED_PROXY_COUNT.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env("LOGIN_FAILED_RATE_LIMIT", "200/m/ip,5/300s/key"),
    "login": env("LOGIN_RATE_LIMIT", "300/m/ip"),
    "reauthenticate": "10/m/user",
}

# --- HTTPS and headers (docs/security.md "Headers") ------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# compose's health check asks http://localhost:8000/healthz from inside the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
# Preloading is hard to undo (browsers ship the list): opt in once HTTPS is settled.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]


# No inline script or style anywhere (templates use classes from portal.css, behaviour
# from static .js files); violations are reported to /csp-report/ and logged.
def _origins(url: str) -> list[str]:
    parts = urlparse(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # The TOTP set-up page shows its QR code as a data: image (no script runs from it).
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        # "Sign in with Okta" posts here and is redirected on to Okta's authorize page:
        # form-action covers that redirect too.
        "form-action": ["'self'", *_origins(OKTA_OIDC_ISSUER)],
        "base-uri": ["'none'"],
        "report-uri": ["/csp-report/"],
    }
}
# X-Forwarded-Proto is believed only when a proxy that sets it stands in front of web.
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies in front of web append to X-Forwarded-For; the audit log's client
# address is the entry the outermost of them added. 0: the TCP peer (REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# /api/v1/docs and /api/v1/openapi.json without signing in (the demo); production
# shows them to signed-in users and API tokens only.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", not PRODUCTION)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more")
# allauth's rate limits see the same client address as the audit log (audit.client_ip).
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "portal" / "static"]
# The demo serves static files straight from the apps (no collectstatic needed);
# production images run collectstatic and serve STATIC_ROOT.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

# --- Cache: rate limits, lockouts and Slack's replay window are shared by every process ---
_CACHE_REDIS = env("REDIS_URL") or (
    env("CELERY_BROKER_URL", "") if env("CELERY_BROKER_URL", "").startswith("redis") else ""
)


def _cache(prefix: str) -> dict[str, str]:
    if _CACHE_REDIS:
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _CACHE_REDIS,
            "KEY_PREFIX": prefix,
        }
    # The demo without Redis: a file cache is still shared by its processes.
    return {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache" / prefix),
    }


CACHES = {"default": _cache("portal"), "replay": _cache("portal-replay")}

# --- Email -------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "emergency-access@localhost")

# --- Celery ------------------------------------------------------------------
REDIS_URL = env("REDIS_URL")
CELERY_BROKER_URL = env("CELERY_BROKER_URL") or REDIS_URL or required("REDIS_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery-queue"
    (_queue_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "store_processed": False,
        # Broadcast (pidbox) messages; kombu's default is ./control in the cwd.
        "control_folder": str(_queue_dir / "control"),
    }
else:
    # Redis: a message a worker took but never acknowledged (it died) is redelivered after
    # visibility_timeout, which must exceed the longest task time limit (readiness: 660 s)
    # or a slow task would run twice. Dead connections are noticed by keepalive and a
    # health check instead of hanging on a half-open socket.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("BROKER_VISIBILITY_TIMEOUT_SECONDS", 3600),
        "socket_keepalive": True,
        "health_check_interval": 10,
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
    }
# Outages: the worker and beat reconnect forever (Celery's default gives up after 100
# tries); a web request that cannot queue gives up fast and the grant sweep re-sends the
# work from the database (docs/reliability.md).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
# On a lost broker connection, tasks still running are cancelled (acks_late: the broker
# redelivers them and every task is idempotent) instead of finishing unacknowledgeable.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every task ends. At the soft limit SoftTimeLimitExceeded is raised inside it (retried or
# failed by its own rules); at the hard limit the worker kills the child. A task that needs
# longer says so on its decorator (time_limit= / soft_time_limit=).
CELERY_TASK_SOFT_TIME_LIMIT = env_int("TASK_SOFT_TIME_LIMIT_SECONDS", 120)
CELERY_TASK_TIME_LIMIT = env_int("TASK_TIME_LIMIT_SECONDS", 180)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("TASK_TIME_LIMIT_SECONDS must exceed TASK_SOFT_TIME_LIMIT_SECONDS")
# The longest task (federation.verify_readiness) may run 660 s: a redelivery sooner than
# that would run it twice.
LONGEST_TASK_TIME_LIMIT = max(CELERY_TASK_TIME_LIMIT, 660)
_visibility_timeout = CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
if isinstance(_visibility_timeout, int) and _visibility_timeout <= LONGEST_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("BROKER_VISIBILITY_TIMEOUT_SECONDS must exceed the task time limits")
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
EXPIRY_SWEEP_SECONDS = env_int("EXPIRY_SWEEP_SECONDS", 15)
# The reconciler's tick (database-side checks; cheap). Between full passes it follows the
# Okta System Log and repairs just the groups an event shows drifting (docs/performance.md
# section 5); a full pass lists every emergency group every RECONCILE_FULL_PASS_MINUTES
# (RECONCILE_FULL_PASS_SECONDS overrides it: tests and the sped-up benchmark).
RECONCILE_SECONDS = env_int("RECONCILE_SECONDS", 60)
RECONCILE_FULL_PASS_MINUTES = env_int("RECONCILE_FULL_PASS_MINUTES", 15)
RECONCILE_FULL_PASS_SECONDS = env_int(
    "RECONCILE_FULL_PASS_SECONDS", 60 * RECONCILE_FULL_PASS_MINUTES
)
if RECONCILE_SECONDS < 1 or RECONCILE_FULL_PASS_SECONDS < 1:
    raise ImproperlyConfigured("RECONCILE_SECONDS and RECONCILE_FULL_PASS_MINUTES must be >= 1")
# One scheduler: a second beat started by mistake stands by (portal/beat.py).
CELERY_BEAT_SCHEDULER = "portal.beat:SingleBeatScheduler"
# The grant sweep (docs/reliability.md): every GRANT_SWEEP_SECONDS, the Okta work of any
# grant not done GRANT_SWEEP_GRACE_SECONDS after it was due is sent again.
GRANT_SWEEP_SECONDS = env_int("GRANT_SWEEP_SECONDS", 5)
GRANT_SWEEP_GRACE_SECONDS = env_int("GRANT_SWEEP_GRACE_SECONDS", 10)
# Heartbeats: beat records one every few seconds, a worker one per heartbeat task (sent by
# beat every WORKER_HEARTBEAT_SECONDS). Older than HEARTBEAT_STALE_SECONDS = silent.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 5)
HEARTBEAT_STALE_SECONDS = env_int("HEARTBEAT_STALE_SECONDS", 30)

# --- The access-request domain -----------------------------------------------
# A request nobody answered within this many minutes lapses.
REQUEST_LAPSE_MINUTES = env_int("REQUEST_LAPSE_MINUTES", 60)
# Okta calls from tasks: retries with exponential backoff and full jitter.
GRANT_TASK_MAX_RETRIES = env_int("GRANT_TASK_MAX_RETRIES", 8)
GRANT_TASK_BACKOFF_BASE_SECONDS = env_int("GRANT_TASK_BACKOFF_BASE_SECONDS", 2)
GRANT_TASK_BACKOFF_MAX_SECONDS = env_int("GRANT_TASK_BACKOFF_MAX_SECONDS", 300)
# A grant approved this long ago but not yet active has its provisioning re-queued.
STUCK_PROVISIONING_SECONDS = env_int("STUCK_PROVISIONING_SECONDS", 120)
# A request pending this long re-notifies every approver, once per this interval.
ESCALATION_MINUTES = env_int("ESCALATION_MINUTES", 15)
# Break-glass (requests_app/break_glass.py): two approvers review each self-activated
# grant within this many hours; an overdue review alerts approvers and staff again
# every BREAK_GLASS_ESCALATION_MINUTES.
BREAK_GLASS_REVIEW_HOURS = env_int("BREAK_GLASS_REVIEW_HOURS", 24)
BREAK_GLASS_REVIEWERS = env_int("BREAK_GLASS_REVIEWERS", 2)
BREAK_GLASS_ESCALATION_MINUTES = env_int("BREAK_GLASS_ESCALATION_MINUTES", 60)
# The "your access ends soon" notice goes out this many minutes before the end.
ENDING_SOON_MINUTES = env_int("ENDING_SOON_MINUTES", 10)

# --- Failover runbook: confirmation, return to normal, drills ---------------------
# A real (non-drill) failover needs a second approver's confirmation before the
# federation app is activated. On by default in production; a small team with one
# approver sets it to false (single-approver mode, docs/security.md).
REQUIRE_FAILOVER_CONFIRMATION = env_bool("REQUIRE_FAILOVER_CONFIRMATION", PRODUCTION)
# Return to normal: remind those still signed in every N minutes.
SIGNOUT_REMINDER_MINUTES = env_int("SIGNOUT_REMINDER_MINUTES", 15)
# How often beat looks for due scheduled deactivations and reminders.
RUNBOOK_TICK_SECONDS = env_int("RUNBOOK_TICK_SECONDS", 30)
# A drill is due this many days after the last passed one; approvers are reminded
# once a day while it is overdue.
DRILL_INTERVAL_DAYS = env_int("DRILL_INTERVAL_DAYS", 90)

# --- PagerDuty (optional): paging the approvers, on-call approval -----------------------
# federation/pagerduty.py, requests_app/paging.py, requests_app/oncall.py, docs/pagerduty.md.
# The REST API (GET /oncalls, GET /users) answers the on-call rule of a level; the Events
# API v2 pages the approvers' service (its integration's routing key, which belongs to the
# approvers' escalation policy). Both https (the client refuses anything else); the demo's
# and the tests' sandbox PagerDuty has its own certificate: PAGERDUTY_CA_BUNDLE.
PAGERDUTY_API_URL = env("PAGERDUTY_API_URL", "https://api.pagerduty.com")
PAGERDUTY_API_TOKEN = env("PAGERDUTY_API_TOKEN", "")
PAGERDUTY_EVENTS_URL = env("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com")
PAGERDUTY_ROUTING_KEY = env("PAGERDUTY_ROUTING_KEY", "")
PAGERDUTY_CA_BUNDLE = env("PAGERDUTY_CA_BUNDLE", "")
# A lookup slower than this falls back to human approval (audited); never retried inline.
PAGERDUTY_TIMEOUT_SECONDS = env_int("PAGERDUTY_TIMEOUT_SECONDS", 5)
# A request pending this long pages the approvers (once per failover: one dedup key).
PAGERDUTY_PAGE_AFTER_MINUTES = env_int("PAGERDUTY_PAGE_AFTER_MINUTES", 10)
# How often beat looks for waiting requests (and resolves the page once none wait).
PAGERDUTY_CHECK_SECONDS = env_int("PAGERDUTY_CHECK_SECONDS", 60)

# --- Slack (optional) ---------------------------------------------------------------
# An incoming webhook URL: every notification is also posted to its channel.
SLACK_WEBHOOK_URL = env("SLACK_WEBHOOK_URL", "")
# The Slack app's signing secret: turns on Approve / Deny buttons, handled at
# /slack/interactivity after verifying Slack's request signature.
SLACK_SIGNING_SECRET = env("SLACK_SIGNING_SECRET", "")
SLACK_TIMEOUT_SECONDS = env_int("SLACK_TIMEOUT_SECONDS", 10)
# The Slack workspaces (team ids, T...) whose members may press the buttons; required
# with SLACK_SIGNING_SECRET: an app installed in another workspace signs with the same secret.
SLACK_TEAM_IDS = env_list("SLACK_TEAM_IDS", "")
if SLACK_SIGNING_SECRET and not SLACK_TEAM_IDS:
    raise ImproperlyConfigured("SLACK_TEAM_IDS must list your Slack workspace ids")
# The levels whose requests (and extensions) an approver may approve with Slack's button:
# a Slack session is not a fresh second factor, so by default only read-only access is
# approved there and anything more asks for the portal and its step-up. "all": every
# level; empty: none. Denying in Slack is always possible (docs/security.md "Slack").
SLACK_APPROVAL_LEVELS = env_list("SLACK_APPROVAL_LEVELS", "RO")
NOTIFY_MAX_RETRIES = env_int("NOTIFY_MAX_RETRIES", 8)


# --- Okta ----------------------------------------------------------------------
IDENTITY_PROVIDER = env("IDENTITY_PROVIDER", "federation.idp.okta.OktaIdentityProvider")
OKTA_ORG_URL = required("OKTA_ORG_URL", "http://127.0.0.1:8100")
OKTA_API_TOKEN = env("OKTA_API_TOKEN", None if PRODUCTION else "sandbox-api-token")
OKTA_CLIENT_ID = env("OKTA_CLIENT_ID")
OKTA_PRIVATE_KEY = env("OKTA_PRIVATE_KEY")  # PEM or JWK JSON, for the OAuth service app
OKTA_KEY_ID = env("OKTA_KEY_ID")
OKTA_SCOPES = env_list(
    "OKTA_SCOPES",
    # users.manage: revoking a user's Okta sessions needs it (DELETE /users/{id}/sessions).
    "okta.groups.manage,okta.users.read,okta.users.manage,okta.apps.manage,okta.logs.read",
)
OKTA_AWS_APP_ID = required("OKTA_AWS_APP_ID", "0oasandboxawsfed01")
OKTA_REQUEST_TIMEOUT = env_int("OKTA_REQUEST_TIMEOUT", 10)
OKTA_SDK_MAX_RETRIES = env_int("OKTA_SDK_MAX_RETRIES", 1)
# Okta's circuit breaker (federation/idp/guard.py, docs/reliability.md): after this many
# consecutive calls without an answer (transport failure, timeout, 5xx) Okta work pauses
# for the cool-down, then one probe call at a time until Okta answers.
OKTA_CIRCUIT_FAILURES = env_int("OKTA_CIRCUIT_FAILURES", 5)
OKTA_CIRCUIT_COOLDOWN_SECONDS = env_int("OKTA_CIRCUIT_COOLDOWN_SECONDS", 15)
# Pacing to Okta's rate limits: a call whose family's budget is spent waits in the process
# for the reset when it is at most this far away, else its task is deferred to the reset.
OKTA_PACE_MAX_WAIT_SECONDS = env_int("OKTA_PACE_MAX_WAIT_SECONDS", 5)
# Calls of each family's window left to others (other apps of the org share the limits).
OKTA_RATE_LIMIT_RESERVE = env_int("OKTA_RATE_LIMIT_RESERVE", 0)
# Where their shared state lives in Redis (one state per org URL under this prefix).
OKTA_GUARD_KEY_PREFIX = env("OKTA_GUARD_KEY_PREFIX", "okta-guard")
if OKTA_CIRCUIT_FAILURES < 1 or OKTA_CIRCUIT_COOLDOWN_SECONDS < 1:
    raise ImproperlyConfigured(
        "OKTA_CIRCUIT_FAILURES and OKTA_CIRCUIT_COOLDOWN_SECONDS must be >= 1"
    )
if not (OKTA_API_TOKEN or (OKTA_CLIENT_ID and OKTA_PRIVATE_KEY)):
    raise ImproperlyConfigured("set OKTA_API_TOKEN, or OKTA_CLIENT_ID and OKTA_PRIVATE_KEY")
_okta = urlparse(OKTA_ORG_URL)
# Plain http is only for the sandbox Okta org on this machine; never for a real org.
OKTA_ALLOW_HTTP = _okta.scheme == "http" and _okta.hostname in {"127.0.0.1", "localhost", "::1"}
if _okta.scheme != "https" and not OKTA_ALLOW_HTTP:
    raise ImproperlyConfigured("OKTA_ORG_URL must be https (http only for a local sandbox org)")

# --- Identity Center health, sign-in / sign-out evidence, ending sessions -----------
# Health probes run only for what is configured: the Identity Center home Region turns
# on AWS Health + sso-admin + identitystore; the access portal URL its HTTPS probe.
IDENTITY_CENTER_REGION = env("IDENTITY_CENTER_REGION", "")
IDENTITY_STORE_ID = env("IDENTITY_STORE_ID", "")  # default: the one list_instances reports
AWS_ACCESS_PORTAL_URL = env("AWS_ACCESS_PORTAL_URL", "")
AWS_ENDPOINT_URL = env("AWS_ENDPOINT_URL", "")  # tests and the demo: a moto server
# AWS Health's service code for Identity Center (unverified: check describe_event_types).
AWS_HEALTH_SERVICE_CODES = env_list("AWS_HEALTH_SERVICE_CODES", "SSO")
HEALTH_POLL_SECONDS = env_int("HEALTH_POLL_SECONDS", 60)
HEALTH_FAILURES_FOR_DISRUPTED = env_int("HEALTH_FAILURES_FOR_DISRUPTED", 3)
HEALTH_PROBE_TIMEOUT_SECONDS = env_int("HEALTH_PROBE_TIMEOUT_SECONDS", 5)
HEALTH_KEEP_DAYS = env_int("HEALTH_KEEP_DAYS", 7)
if HEALTH_FAILURES_FOR_DISRUPTED < 1 or HEALTH_POLL_SECONDS < 5:
    raise ImproperlyConfigured("HEALTH_FAILURES_FOR_DISRUPTED >= 1, HEALTH_POLL_SECONDS >= 5")
# The Okta System Log is read with a persisted `after` cursor every N seconds.
SYSTEM_LOG_POLL_SECONDS = env_int("SYSTEM_LOG_POLL_SECONDS", 30)
SYSTEM_LOG_PAGE_SIZE = env_int("SYSTEM_LOG_PAGE_SIZE", 500)
SYSTEM_LOG_MAX_PAGES = env_int("SYSTEM_LOG_MAX_PAGES", 10)
# Who the portal is in the System Log (the API token's owner login, or the OAuth
# service app's client id): changes by anyone else raise an outside-change alert.
OKTA_PORTAL_ACTORS = env_list(
    "OKTA_PORTAL_ACTORS", "" if PRODUCTION else "portal-service@example.com"
) + ([OKTA_CLIENT_ID] if OKTA_CLIENT_ID else [])
# With IAM write access to the emergency account, ending a grant also attaches AWS's
# "revoke older sessions" deny to the role (optionally assuming this role to do it).
AWS_EMERGENCY_IAM_WRITE = env_bool("AWS_EMERGENCY_IAM_WRITE", False)
AWS_EMERGENCY_IAM_ROLE_ARN = env("AWS_EMERGENCY_IAM_ROLE_ARN", "")
# Optional: CloudTrail ConsoleLogin events of the emergency account as sign-in evidence.
CLOUDTRAIL_CONSOLE_LOGINS = env_bool("CLOUDTRAIL_CONSOLE_LOGINS", False)
CLOUDTRAIL_REGION = env("CLOUDTRAIL_REGION", "us-east-1")
# AWS-side alarms (docs/aws-alarms.md): EventBridge posts emergency-role uses to
# /api/v1/aws-events with this connection secret in AWS_EVENTS_HEADER. Give the secret
# itself, or only its SHA-256 (hex) so the settings never hold it. Neither: the endpoint
# refuses everything. The CloudTrail poller above (CLOUDTRAIL_CONSOLE_LOGINS) is the
# fallback: it feeds ConsoleLogin and AssumeRoleWithSAML to the same matcher.
AWS_EVENTS_SECRET = env("AWS_EVENTS_SECRET", "")
AWS_EVENTS_SECRET_SHA256 = env("AWS_EVENTS_SECRET_SHA256", "").lower()
if AWS_EVENTS_SECRET_SHA256 and not re.fullmatch(r"[0-9a-f]{64}", AWS_EVENTS_SECRET_SHA256):
    raise ImproperlyConfigured("AWS_EVENTS_SECRET_SHA256 is 64 hexadecimal digits")
AWS_EVENTS_HEADER = env("AWS_EVENTS_HEADER", "X-Emergency-Access-Events-Key")

# --- The audit log: verification and signed checkpoints (docs/audit.md) -----------
# Every AUDIT_VERIFY_SECONDS a worker re-hashes the whole chain; the integrity badge
# turns amber when the last good verification is older than AUDIT_VERIFY_STALE_HOURS.
AUDIT_VERIFY_SECONDS = env_int("AUDIT_VERIFY_SECONDS", 86400)
AUDIT_VERIFY_STALE_HOURS = env_int("AUDIT_VERIFY_STALE_HOURS", 26)
# A "verify now" that has not finished after this long is considered lost.
AUDIT_VERIFY_TIMEOUT = env_int("AUDIT_VERIFY_TIMEOUT", 900)
AUDIT_CHECKPOINT_SECONDS = env_int("AUDIT_CHECKPOINT_SECONDS", 3600)
# Signs checkpoints (HMAC-SHA256). Production: its own key (auditors hold a copy),
# never derived from SECRET_KEY. The demo derives one.
AUDIT_CHECKPOINT_KEY = required("AUDIT_CHECKPOINT_KEY", "checkpoint:" + SECRET_KEY)
if PRODUCTION and AUDIT_CHECKPOINT_KEY in {SECRET_KEY, "checkpoint:" + SECRET_KEY}:
    raise ImproperlyConfigured("AUDIT_CHECKPOINT_KEY must differ from SECRET_KEY")
AUDIT_CHECKPOINT_DIR = env(
    "AUDIT_CHECKPOINT_DIR", "" if PRODUCTION else str(VAR_DIR / "audit-checkpoints")
)
AUDIT_CHECKPOINT_S3_BUCKET = env("AUDIT_CHECKPOINT_S3_BUCKET", "")
if PRODUCTION and not (AUDIT_CHECKPOINT_DIR or AUDIT_CHECKPOINT_S3_BUCKET):
    # Checkpoints kept where the database's attacker cannot reach: choose explicitly.
    raise ImproperlyConfigured(
        "Set AUDIT_CHECKPOINT_S3_BUCKET (S3 with Object Lock) or AUDIT_CHECKPOINT_DIR "
        "when PORTAL_ENV=production"
    )
AUDIT_CHECKPOINT_S3_PREFIX = env("AUDIT_CHECKPOINT_S3_PREFIX", "audit-checkpoints/")
AUDIT_CHECKPOINT_S3_REGION = env("AUDIT_CHECKPOINT_S3_REGION", "")
# 0: rely on the bucket's default Object Lock retention.
AUDIT_CHECKPOINT_S3_RETENTION_DAYS = env_int("AUDIT_CHECKPOINT_S3_RETENTION_DAYS", 0)
AUDIT_CHECKPOINT_S3_LOCK_MODE = env("AUDIT_CHECKPOINT_S3_LOCK_MODE", "COMPLIANCE")
if AUDIT_CHECKPOINT_S3_LOCK_MODE not in {"COMPLIANCE", "GOVERNANCE"}:
    raise ImproperlyConfigured("AUDIT_CHECKPOINT_S3_LOCK_MODE is COMPLIANCE or GOVERNANCE")

# --- Readiness: AWS and Okta checked against the access plan (docs/architecture.md) --
# Readiness reads each account through its read-only audit role (the CloudFormation
# templates create it): arn:aws:iam::<account id>:role/<AWS_AUDIT_ROLE_NAME>.
AWS_AUDIT_ROLE_NAME = env("AWS_AUDIT_ROLE_NAME", "EmergencyAccessAudit")
AWS_READINESS_REGION = env("AWS_READINESS_REGION", "us-east-1")
# Warn this many days before the SAML metadata or its signing certificate expires.
READINESS_WARN_DAYS = env_int("READINESS_WARN_DAYS", 30)
# Warn when an Okta rate-limit bucket has less than this share left.
READINESS_RATE_LIMIT_WARN_PERCENT = env_int("READINESS_RATE_LIMIT_WARN_PERCENT", 25)
# When the daily check runs: cron "minute hour day-of-month month day-of-week" (UTC),
# or "off".
READINESS_SCHEDULE = env("READINESS_SCHEDULE", "30 6 * * *")
if READINESS_SCHEDULE != "off":
    _cron = READINESS_SCHEDULE.split()
    if len(_cron) != 5:
        raise ImproperlyConfigured("READINESS_SCHEDULE is 5 cron fields (UTC) or 'off'")
    try:
        _readiness_cron = crontab(
            minute=_cron[0],
            hour=_cron[1],
            day_of_month=_cron[2],
            month_of_year=_cron[3],
            day_of_week=_cron[4],
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"READINESS_SCHEDULE: {exc}") from None

# --- The beat schedule: every periodic task, in one place --------------------------
CELERY_BEAT_SCHEDULE = {
    # The machinery: the grant sweep (a lost task is re-sent) and the worker's heartbeat.
    "sweep-grant-work": {
        "task": "requests_app.sweep_grant_work",
        "schedule": float(GRANT_SWEEP_SECONDS),
        # Not kept forever during a long outage; long enough to get through a backlog
        # (a worker just back works through the queue in order).
        "options": {"expires": 60.0},
    },
    "sweep-failover-work": {
        "task": "federation.sweep_failover_work",
        "schedule": float(GRANT_SWEEP_SECONDS),
        "options": {"expires": 60.0},
    },
    "worker-heartbeat": {
        "task": "portal.worker_heartbeat",
        "schedule": float(WORKER_HEARTBEAT_SECONDS),
        "options": {"expires": float(HEARTBEAT_STALE_SECONDS)},
    },
    # Access requests: expiry, lapse, the reconciler against Okta, reminders.
    "expire-due-grants": {
        "task": "requests_app.expire_due_grants",
        "schedule": float(EXPIRY_SWEEP_SECONDS),
    },
    "lapse-unanswered-requests": {
        "task": "requests_app.lapse_unanswered_requests",
        "schedule": 60.0,
    },
    "reconcile-emergency-groups": {
        "task": "requests_app.reconcile_emergency_groups",
        "schedule": float(RECONCILE_SECONDS),
    },
    "escalate-pending-requests": {
        "task": "requests_app.escalate_pending_requests",
        "schedule": 60.0,
    },
    "warn-ending-grants": {"task": "requests_app.warn_ending_grants", "schedule": 60.0},
    "escalate-break-glass-reviews": {
        "task": "requests_app.escalate_break_glass_reviews",
        "schedule": 300.0,
    },
    # PagerDuty: page the approvers once per failover while a request waits, resolve it
    # once none does (requests_app/paging.py; does nothing without a routing key).
    "page-approvers": {
        "task": "requests_app.page_approvers",
        "schedule": float(PAGERDUTY_CHECK_SECONDS),
    },
    # The failover: the return to normal's scheduled deactivation and reminders, drills.
    "return-to-normal-tick": {
        "task": "federation.return_to_normal_tick",
        "schedule": float(RUNBOOK_TICK_SECONDS),
    },
    "remind-overdue-drill": {"task": "federation.remind_overdue_drill", "schedule": 3600.0},
    # Watching: Identity Center health, the Okta System Log, AWS session denies.
    "poll-identity-center-health": {
        "task": "federation.poll_health",
        "schedule": float(HEALTH_POLL_SECONDS),
    },
    "poll-okta-system-log": {
        "task": "federation.poll_system_log",
        "schedule": float(SYSTEM_LOG_POLL_SECONDS),
    },
    "sweep-session-denies": {"task": "federation.sweep_session_denies", "schedule": 60.0},
    # The audit log: verification and signed checkpoints.
    "verify-audit-chain": {
        "task": "portal.verify_audit_chain",
        "schedule": float(AUDIT_VERIFY_SECONDS),
    },
    "audit-checkpoint": {
        "task": "portal.audit_checkpoint",
        "schedule": float(AUDIT_CHECKPOINT_SECONDS),
    },
}
if READINESS_SCHEDULE != "off":
    CELERY_BEAT_SCHEDULE["verify-readiness"] = {
        "task": "federation.verify_readiness",
        "schedule": _readiness_cron,
    }

# --- Logging: secrets never reach logs ------------------------------------------
_AT_LEAST_INFO = logging.getLevelName(max(logging.INFO, logging.getLevelName(LOG_LEVEL)))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # At DEBUG the okta SDK logs whole requests, API token included; it also logs
        # every 404 at ERROR. The adapter logs each failure itself, without secrets.
        "okta-sdk-python": {"level": "CRITICAL", "propagate": True},
        # At DEBUG slack_sdk logs the webhook URL, which is a secret.
        "slack_sdk": {"level": "INFO"},
        "django.db.backends": {"level": "INFO"},
        # "Found credentials in ..." on every boto3 client (health probes: every minute).
        "botocore.credentials": {"level": "WARNING"},
        # At DEBUG these log whole requests: AWS session tokens, Okta's SSWS token.
        **{
            name: {"level": _AT_LEAST_INFO}
            for name in ("botocore", "boto3", "s3transfer", "urllib3", "okta", "aiohttp")
        },
    },
}
