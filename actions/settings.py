"""The one place that reads the environment.

Every process of AF-assistenten (action server, Rasa channels, web server,
ServiceNow emulator, scripts) gets its configuration from `get_settings()`.
Nothing else in the code base reads ``os.environ``.

Defaults are safe: the code default is *production* mode, where development
secrets are refused. ``make run`` sets ``AF_MODE=development`` explicitly and
says so loudly when it starts.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Optional, Tuple
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Development-only defaults. They are documented in README.md and refused in
# production mode (see `_secret`).
DEV_RASA_API_TOKEN = "udvikling-rasa-token"
DEV_IDENTITY_JWT_KEY = "udvikling-identitetsnoegle-kun-til-test"
DEV_SERVICENOW_USERNAME = "af.assistent"
DEV_SERVICENOW_PASSWORD = "udvikling-servicenow"
DEV_SERVICENOW_CLIENT_ID = "af-assistent-dev"
DEV_SERVICENOW_CLIENT_SECRET = "udvikling-oauth-hemmelighed"
DEV_WEB_SESSION_KEY = "udvikling-web-sessionsnoegle"
# The demo supporter seeded in development mode (web/support_auth.py, docs/handoff.md).
DEV_SUPPORTER_USERNAME = "demo.supporter"
DEV_SUPPORTER_PASSWORD = "udvikling-support"


class ConfigError(ValueError):
    """A configuration value is missing or invalid."""


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} skal være et heltal, fik {raw!r}") from exc
    if not lo <= value <= hi:
        raise ConfigError(f"{name} skal ligge mellem {lo} og {hi}, fik {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} skal være et tal, fik {raw!r}") from exc
    if not lo <= value <= hi:
        raise ConfigError(f"{name} skal ligge mellem {lo} og {hi}, fik {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "ja", "on"}:
        return True
    if lowered in {"0", "false", "no", "nej", "off"}:
        return False
    raise ConfigError(f"{name} skal være true eller false, fik {raw!r}")


def _list(env: Mapping[str, str], name: str, default: Tuple[str, ...]) -> Tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _secret(env: Mapping[str, str], name: str, dev_default: str, development: bool) -> str:
    """A secret from NAME, or from the file named by NAME_FILE.

    In development mode a documented development default is used when neither
    is set. In production mode the secret is required (empty means "not
    configured"; the feature that needs it refuses to start or stays off).
    """
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE peger på en fil der ikke kan læses: {file_name}") from exc
    value = env.get(name, "").strip()
    if value:
        return value
    return dev_default if development else ""


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name)
    path = Path(raw) if raw else default
    return path if path.is_absolute() else PROJECT_ROOT / path


@dataclass(frozen=True)
class Settings:
    mode: str
    profile_dir: Path
    var_dir: Path
    log_dir: Path
    bind_host: str
    # Rasa server and action server
    rasa_url: str
    # The address the leaders' browsers use for socket.io (the proxy's public URL); rasa_url is
    # the internal address the web server calls Rasa's HTTP API on.
    rasa_public_url: str
    rasa_port: int
    rasa_api_token: str
    actions_port: int
    actions_url: str
    # Identity (signed token from the intranet)
    identity_jwt_key: str
    identity_jwt_algorithm: str
    identity_required: bool
    allowed_origins: Tuple[str, ...]
    # ServiceNow
    servicenow_url: str
    servicenow_table: str
    servicenow_username: str
    servicenow_password: str
    servicenow_client_id: str
    servicenow_client_secret: str
    servicenow_timeout_seconds: float
    servicenow_max_retries: int
    servicenow_backoff_seconds: float
    outbox_path: Path
    outbox_interval_seconds: float
    emulator_port: int
    emulator_db_path: Path
    # Web (leader page and supporter console)
    web_port: int
    web_session_key: str
    web_session_minutes: int
    supporters_file: Path
    # Reverse proxies whose X-Forwarded-For names the browser (IPs or networks); none by default.
    web_trusted_proxies: Tuple[str, ...]
    handoff_wait_seconds: int
    handoff_presence_seconds: int
    handoff_opening_hours: str
    handoff_db_path: Path
    # Input handling and retention
    max_message_length: int
    # The largest request body any of our servers reads (Rasa's channels, the web server).
    max_body_bytes: int
    # Rasa's REST channel (tests, integrations). Off in production unless configured.
    rest_channel_enabled: bool
    # Where each process logs: "file" (logs/<process>.log; make run) or "stdout" (containers),
    # as "text" or "json" lines. CPR numbers and secrets are masked either way.
    log_target: str
    log_format: str
    # The shared model store: models/ with the pointer file i-drift (make activate / rollback).
    # Every Rasa replica checks the pointer every model_poll_seconds and loads the model it
    # names (0: never; the model stays the one the replica started with).
    models_dir: Path
    model_poll_seconds: float
    retention_days: int
    tracker_db_path: Path
    # Scaled deployment: PostgreSQL tracker store and Redis lock store (default: SQLite, in-memory locks)
    tracker_store: str
    postgres_host: str
    postgres_port: int
    postgres_db: str
    postgres_user: str
    postgres_password: str
    lock_store: str
    redis_host: str
    redis_port: int
    redis_db: int
    redis_password: str
    # How socket.io reaches a leader connected to another Rasa replica: "local" (one
    # replica) or "redis" (a message queue shared by all replicas; default with the Redis lock store)
    socketio_manager: str
    start_emulator: bool
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def development(self) -> bool:
        return self.mode == "development"

    @property
    def redis_url(self) -> str:
        """The Redis URL for clients that take one (socket.io's manager); the password URL-quoted."""
        auth = f":{quote(self.redis_password, safe='')}@" if self.redis_password else ""
        return f"redis://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}"

    @property
    def servicenow_auth(self) -> str:
        """'oauth' when OAuth client credentials are set, else 'basic'."""
        return "oauth" if self.servicenow_client_id and self.servicenow_client_secret else "basic"


def load_settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    """Build and validate settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    mode = _str(env, "AF_MODE", "production").lower()
    if mode not in {"development", "production"}:
        raise ConfigError(f"AF_MODE skal være development eller production, fik {mode!r}")
    dev = mode == "development"

    profile = _str(env, "AF_PROFILE", "buf")
    profile_dir = Path(profile) if "/" in profile else PROJECT_ROOT / "profiles" / profile
    if not profile_dir.is_absolute():
        profile_dir = PROJECT_ROOT / profile_dir
    var_dir = _path(env, "AF_VAR_DIR", Path("var"))
    bind_host = _str(env, "AF_BIND_HOST", "127.0.0.1")
    rasa_port = _int(env, "AF_RASA_PORT", 5005, 1, 65535)
    actions_port = _int(env, "AF_ACTIONS_PORT", 5055, 1, 65535)
    emulator_port = _int(env, "AF_EMULATOR_PORT", 8090, 1, 65535)
    web_port = _int(env, "AF_WEB_PORT", 8080, 1, 65535)
    lock_store = _str(env, "AF_LOCK_STORE", "memory").lower()

    servicenow_url = _str(env, "SERVICENOW_URL", f"http://127.0.0.1:{emulator_port}" if dev else "")
    settings = Settings(
        mode=mode,
        profile_dir=profile_dir,
        var_dir=var_dir,
        log_dir=_path(env, "AF_LOG_DIR", Path("logs")),
        bind_host=bind_host,
        rasa_url=_str(env, "AF_RASA_URL", f"http://127.0.0.1:{rasa_port}").rstrip("/"),
        rasa_public_url=_str(
            env, "AF_RASA_PUBLIC_URL", _str(env, "AF_RASA_URL", f"http://127.0.0.1:{rasa_port}")
        ).rstrip("/"),
        rasa_port=rasa_port,
        rasa_api_token=_secret(env, "RASA_API_TOKEN", DEV_RASA_API_TOKEN, dev),
        actions_port=actions_port,
        # Where the Rasa server calls the actions (a load balancer in the scaled set-up).
        actions_url=_str(env, "AF_ACTIONS_URL", f"http://127.0.0.1:{actions_port}/webhook"),
        identity_jwt_key=_secret(env, "AF_IDENTITY_JWT_KEY", DEV_IDENTITY_JWT_KEY, dev),
        identity_jwt_algorithm=_str(env, "AF_IDENTITY_JWT_ALGORITHM", "HS256"),
        identity_required=_bool(env, "AF_IDENTITY_REQUIRED", not dev),
        allowed_origins=_list(
            env, "AF_ALLOWED_ORIGINS", (f"http://127.0.0.1:{web_port}", f"http://localhost:{web_port}")
        ),
        servicenow_url=servicenow_url.rstrip("/"),
        servicenow_table=_str(env, "SERVICENOW_TABLE", "u_af_henvendelse"),
        servicenow_username=_secret(env, "SERVICENOW_USERNAME", DEV_SERVICENOW_USERNAME, dev),
        servicenow_password=_secret(env, "SERVICENOW_PASSWORD", DEV_SERVICENOW_PASSWORD, dev),
        servicenow_client_id=_secret(env, "SERVICENOW_CLIENT_ID", "", dev),
        servicenow_client_secret=_secret(env, "SERVICENOW_CLIENT_SECRET", "", dev),
        servicenow_timeout_seconds=_float(env, "SERVICENOW_TIMEOUT_SECONDS", 8.0, 0.1, 120.0),
        servicenow_max_retries=_int(env, "SERVICENOW_MAX_RETRIES", 3, 0, 10),
        servicenow_backoff_seconds=_float(env, "SERVICENOW_BACKOFF_SECONDS", 0.5, 0.0, 60.0),
        outbox_path=_path(env, "AF_OUTBOX_PATH", var_dir / "outbox.sqlite3"),
        outbox_interval_seconds=_float(env, "AF_OUTBOX_INTERVAL_SECONDS", 15.0, 0.05, 3600.0),
        emulator_port=emulator_port,
        emulator_db_path=_path(env, "AF_EMULATOR_DB_PATH", var_dir / "servicenow-emulator.sqlite3"),
        web_port=web_port,
        web_session_key=_secret(env, "AF_WEB_SESSION_KEY", DEV_WEB_SESSION_KEY, dev),
        web_session_minutes=_int(env, "AF_WEB_SESSION_MINUTES", 480, 1, 24 * 60),
        supporters_file=_path(env, "AF_SUPPORTERS_FILE", var_dir / "supporters.yml"),
        web_trusted_proxies=_list(env, "AF_WEB_TRUSTED_PROXIES", ()),
        handoff_wait_seconds=_int(env, "AF_HANDOFF_WAIT_SECONDS", 180, 5, 3600),
        handoff_presence_seconds=_int(env, "AF_HANDOFF_PRESENCE_SECONDS", 90, 10, 3600),
        handoff_opening_hours=_str(env, "AF_HANDOFF_OPENING_HOURS", "always" if dev else "profile").lower(),
        handoff_db_path=_path(env, "AF_HANDOFF_DB_PATH", var_dir / "handoff.sqlite3"),
        max_message_length=_int(env, "AF_MAX_MESSAGE_LENGTH", 2000, 50, 100_000),
        max_body_bytes=_int(env, "AF_MAX_BODY_BYTES", 64 * 1024, 4 * 1024, 10 * 1024 * 1024),
        rest_channel_enabled=_bool(env, "AF_REST_CHANNEL", dev),
        log_target=_str(env, "AF_LOG_TARGET", "file").lower(),
        log_format=_str(env, "AF_LOG_FORMAT", "text").lower(),
        models_dir=_path(env, "AF_MODELS_DIR", Path("models")),
        model_poll_seconds=_float(env, "AF_MODEL_POLL_SECONDS", 10.0, 0.0, 3600.0),
        retention_days=_int(env, "AF_RETENTION_DAYS", 90, 1, 3650),
        tracker_db_path=_path(env, "AF_TRACKER_DB_PATH", var_dir / "tracker.db"),
        tracker_store=_str(env, "AF_TRACKER_STORE", "sqlite").lower(),
        postgres_host=_str(env, "AF_POSTGRES_HOST", "127.0.0.1"),
        postgres_port=_int(env, "AF_POSTGRES_PORT", 5432, 1, 65535),
        postgres_db=_str(env, "AF_POSTGRES_DB", "af_assistent"),
        postgres_user=_str(env, "AF_POSTGRES_USER", "af_assistent"),
        postgres_password=_secret(env, "AF_POSTGRES_PASSWORD", "", dev),
        lock_store=lock_store,
        redis_host=_str(env, "AF_REDIS_HOST", "127.0.0.1"),
        redis_port=_int(env, "AF_REDIS_PORT", 6379, 1, 65535),
        redis_db=_int(env, "AF_REDIS_DB", 0, 0, 15),
        # No development default: a Redis without a password is only for loopback.
        redis_password=_secret(env, "AF_REDIS_PASSWORD", "", dev),
        socketio_manager=_str(env, "AF_SOCKETIO_MANAGER", "redis" if lock_store == "redis" else "local").lower(),
        start_emulator=_bool(env, "AF_START_EMULATOR", dev and not env.get("SERVICENOW_URL")),
        extra={k: v for k, v in env.items() if k.startswith("AF_TEST_")},
    )
    if settings.log_target not in {"file", "stdout"}:
        raise ConfigError("AF_LOG_TARGET skal være file eller stdout")
    if settings.log_format not in {"text", "json"}:
        raise ConfigError("AF_LOG_FORMAT skal være text eller json")
    if settings.tracker_store not in {"sqlite", "postgres"}:
        raise ConfigError("AF_TRACKER_STORE skal være sqlite eller postgres")
    if settings.handoff_opening_hours not in {"profile", "always"}:
        raise ConfigError("AF_HANDOFF_OPENING_HOURS skal være profile eller always")
    for proxy in settings.web_trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise ConfigError(f"AF_WEB_TRUSTED_PROXIES: {proxy!r} er ikke en IP-adresse eller et netværk") from exc
    if settings.lock_store not in {"memory", "redis"}:
        raise ConfigError("AF_LOCK_STORE skal være memory eller redis")
    if settings.socketio_manager not in {"local", "redis"}:
        raise ConfigError("AF_SOCKETIO_MANAGER skal være local eller redis")
    if not settings.profile_dir.is_dir():
        raise ConfigError(f"AF_PROFILE: organisationsprofilen findes ikke: {settings.profile_dir}")
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return load_settings()
