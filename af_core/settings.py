"""The one place that reads the environment.

Every process of AF-assistenten (action server, Rasa channels, web server,
ServiceNow emulator, scripts) gets its configuration from `get_settings()`.
Nothing else in the code base reads ``os.environ``.

Defaults are safe: the code default is *production* mode. There a missing
secret, a development value (``DEV_*``) or a key that is too short stops the
process at start with a Danish message that names the variable and never
shows its value (`_production_problems`). ``make run`` sets
``AF_MODE=development`` explicitly and says so loudly when it starts.
"""
from __future__ import annotations

import ipaddress
import os
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import List, Mapping, Optional, Tuple
from urllib.parse import quote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Development-only defaults. They are documented in README.md and refused in
# production mode, also when set explicitly (see `_production_problems`).
DEV_RASA_API_TOKEN = "udvikling-rasa-token"
DEV_IDENTITY_JWT_KEY = "udvikling-identitetsnoegle-kun-til-test"
DEV_SERVICENOW_USERNAME = "af.assistent"
DEV_SERVICENOW_PASSWORD = "udvikling-servicenow"
DEV_SERVICENOW_CLIENT_ID = "af-assistent-dev"
DEV_SERVICENOW_CLIENT_SECRET = "udvikling-oauth-hemmelighed"
DEV_WEB_SESSION_KEY = "udvikling-web-sessionsnoegle"
# Who signs the development page's identity tokens, and for whom (web/leader_page.py).
DEV_IDENTITY_ISSUER = "af-assistenten-udvikling"
DEV_IDENTITY_AUDIENCE = "af-assistenten-udvikling"
# The demo supporter seeded in development mode (web/support_auth.py, docs/handoff.md).
DEV_SUPPORTER_USERNAME = "demo.supporter"
DEV_SUPPORTER_PASSWORD = "udvikling-support"
# The demo trainer seeded in development mode: role "trainer" only (web/workbench.py, docs/traening.md).
DEV_TRAINER_USERNAME = "demo.traener"
DEV_TRAINER_PASSWORD = "udvikling-traener"


# Production: the shortest shared secret we accept (RASA_API_TOKEN, AF_IDENTITY_JWT_KEY,
# AF_WEB_SESSION_KEY). An HMAC key must also be as long as its hash (HS384: 48, HS512: 64).
MIN_SECRET_LENGTH = 32
# The longest life (exp - iat) of an identity token; AF_IDENTITY_MAX_LIFETIME_SECONDS may lower it.
IDENTITY_MAX_LIFETIME_SECONDS = 12 * 3600
HMAC_ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}
# Asymmetric algorithms and the kind of public key each needs. "none" is never accepted.
ASYMMETRIC_ALGORITHMS = {
    "RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
    "ES256": "ec", "ES384": "ec", "ES512": "ec", "EdDSA": "ed",
}
_DOMAIN_RE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Secrets checked against the development values in production (value or NAME_FILE).
_SECRET_NAMES = (
    "RASA_API_TOKEN", "AF_IDENTITY_JWT_KEY", "AF_WEB_SESSION_KEY", "SERVICENOW_USERNAME", "SERVICENOW_PASSWORD",
    "SERVICENOW_CLIENT_ID", "SERVICENOW_CLIENT_SECRET", "AF_POSTGRES_PASSWORD", "AF_REDIS_PASSWORD",
)
_NEW_SECRET_HINT = 'Lav en ny værdi med: python3 -c "import secrets; print(secrets.token_urlsafe(32))"'


class ConfigError(ValueError):
    """A configuration value is missing or invalid."""


def _development_values() -> set:
    return {value for name, value in globals().items() if name.startswith("DEV_") and isinstance(value, str) and value}


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


def _source(env: Mapping[str, str], name: str) -> str:
    """The variable a value came from: NAME_FILE when that is set, else NAME (for messages)."""
    return f"{name}_FILE" if env.get(f"{name}_FILE") else name


def _pem(env: Mapping[str, str], name: str) -> str:
    """A PEM text from NAME (``\\n`` allowed for line breaks) or from the file NAME_FILE."""
    value = _secret(env, name, "", False)
    if value and "\n" not in value and "\\n" in value:
        value = value.replace("\\n", "\n")
    return value


def _algorithms(env: Mapping[str, str], default: str) -> Tuple[str, ...]:
    """AF_IDENTITY_JWT_ALGORITHM: one algorithm, or several of the same kind (comma separated)."""
    names = _list(env, "AF_IDENTITY_JWT_ALGORITHM", (default,))
    known = {**HMAC_ALGORITHMS, **ASYMMETRIC_ALGORITHMS}
    for name in names:
        if name.lower() == "none":
            raise ConfigError("AF_IDENTITY_JWT_ALGORITHM: 'none' (usignerede tokens) er aldrig tilladt")
        if name not in known:
            raise ConfigError(
                f"AF_IDENTITY_JWT_ALGORITHM: ukendt algoritme {name!r}. Brug en af {', '.join(known)}")
    if len({name in HMAC_ALGORITHMS for name in names}) > 1:
        # An attacker could otherwise sign with the public key as an HMAC secret.
        raise ConfigError("AF_IDENTITY_JWT_ALGORITHM: bland ikke HS-algoritmer med RS/PS/ES/EdDSA")
    return names


def _public_key_kind(pem: str) -> str:
    """'rsa', 'ec' or 'ed' for a PEM public key; ConfigError (without the key) otherwise."""
    if "PRIVATE KEY" in pem:
        raise ConfigError(
            "AF_IDENTITY_PUBLIC_KEY indeholder en privat nøgle. Giv kun intranettets offentlige nøgle; "
            "den private nøgle må aldrig ligge hos AF-assistenten")
    try:
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError as exc:  # pragma: no cover - cryptography is pinned in requirements.txt
        raise ConfigError("AF_IDENTITY_PUBLIC_KEY kræver pakken cryptography") from exc
    try:
        key = load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError):
        raise ConfigError("AF_IDENTITY_PUBLIC_KEY er ikke en offentlig nøgle i PEM-format") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ConfigError("AF_IDENTITY_PUBLIC_KEY: en RSA-nøgle skal have mindst 2048 bit")
        return "rsa"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec"
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return "ed"
    raise ConfigError("AF_IDENTITY_PUBLIC_KEY: nøgletypen understøttes ikke (brug RSA, EC eller Ed25519)")


def _jwks_url(env: Mapping[str, str]) -> str:
    url = _str(env, "AF_IDENTITY_JWKS_URL", "")
    if not url:
        return ""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in {"https", "http"} or (
            parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS):
        raise ConfigError("AF_IDENTITY_JWKS_URL skal være en https-adresse (http kun på 127.0.0.1)")
    return url


def _email_domains(env: Mapping[str, str]) -> Tuple[str, ...]:
    domains = tuple(d.lower() for d in _list(env, "AF_IDENTITY_EMAIL_DOMAINS", ()))
    for domain in domains:
        if not _DOMAIN_RE.match(domain):
            raise ConfigError(
                f"AF_IDENTITY_EMAIL_DOMAINS: {domain!r} er ikke et domæne (skriv fx buf.kk.dk,kk.dk)")
    return domains


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
    # Identity (signed token from the intranet, checked in af_core/identity.py). Either a shared
    # HMAC key (HS*) or, better, the intranet's public key / JWKS (RS*, PS*, ES*, EdDSA): then no
    # host of ours holds a key that can sign an identity.
    identity_jwt_key: str
    identity_jwt_algorithms: Tuple[str, ...]
    identity_public_key: str
    identity_jwks_url: str
    identity_jwks_timeout_seconds: float
    identity_jwks_cache_seconds: int
    identity_issuer: str
    identity_audience: str
    identity_max_lifetime_seconds: int
    identity_email_domains: Tuple[str, ...]
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
    # The largest request body Rasa's channels read (REST and socket.io). A chat message is cut to
    # max_message_length anyway; this only has to let a long pasted text (JSON-escaped emoji take
    # 12 bytes each) arrive so the leader gets the kind "too long" answer, and refuse the rest.
    max_body_bytes: int
    # Rasa's REST channel (tests, integrations). Off in production unless configured.
    rest_channel_enabled: bool
    # How many messages one leader may send per minute (per Rasa replica); 0 = no limit.
    leader_messages_per_minute: int
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
    # The trainer's workbench (web/workbench.py, trainer/): the checkout whose YAML files it edits
    # and trains from (data/, domain/, profiles/, models/), the Python with Rasa that trains and
    # measures ("" = that checkout's .venv, else this interpreter), the frozen evaluation sets it
    # compares models on (paths relative to trainer_root), and whether the test stories run too.
    trainer_root: Path
    trainer_python: str
    trainer_eval_sets: Tuple[str, ...]
    trainer_story_tests: bool
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def development(self) -> bool:
        return self.mode == "development"

    @property
    def identity_jwt_algorithm(self) -> str:
        """The first accepted identity algorithm (the one the development page signs with)."""
        return self.identity_jwt_algorithms[0]

    @property
    def identity_asymmetric(self) -> bool:
        """True when tokens are checked with a public key or a JWKS (no signing key here)."""
        return bool(self.identity_public_key or self.identity_jwks_url)

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
    identity_public_key = _pem(env, "AF_IDENTITY_PUBLIC_KEY")
    identity_jwks_url = _jwks_url(env)
    if identity_public_key and identity_jwks_url:
        raise ConfigError("Sæt enten AF_IDENTITY_PUBLIC_KEY eller AF_IDENTITY_JWKS_URL, ikke begge")
    key_kind = _public_key_kind(identity_public_key) if identity_public_key else ""
    default_algorithm = {"rsa": "RS256", "ec": "ES256", "ed": "EdDSA"}.get(key_kind, "RS256")
    identity_algorithms = _algorithms(env, default_algorithm if identity_public_key or identity_jwks_url else "HS256")
    identity_hmac = identity_algorithms[0] in HMAC_ALGORITHMS
    if identity_hmac and (identity_public_key or identity_jwks_url):
        raise ConfigError("AF_IDENTITY_JWT_ALGORITHM: en offentlig nøgle eller JWKS kræver RS/PS/ES/EdDSA, ikke HS")
    if key_kind and any(ASYMMETRIC_ALGORITHMS[a] != key_kind for a in identity_algorithms):
        raise ConfigError("AF_IDENTITY_JWT_ALGORITHM passer ikke til nøgletypen i AF_IDENTITY_PUBLIC_KEY")
    if not identity_hmac and (env.get("AF_IDENTITY_JWT_KEY", "").strip() or env.get("AF_IDENTITY_JWT_KEY_FILE")):
        raise ConfigError(
            "AF_IDENTITY_JWT_KEY bruges kun med HS-algoritmer. Med en offentlig nøgle eller JWKS skal den fjernes, "
            "så ingen server hos os kan underskrive en identitet")
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
        identity_jwt_key=_secret(env, "AF_IDENTITY_JWT_KEY", DEV_IDENTITY_JWT_KEY, dev) if identity_hmac else "",
        identity_jwt_algorithms=identity_algorithms,
        identity_public_key=identity_public_key,
        identity_jwks_url=identity_jwks_url,
        identity_jwks_timeout_seconds=_float(env, "AF_IDENTITY_JWKS_TIMEOUT_SECONDS", 3.0, 0.1, 30.0),
        identity_jwks_cache_seconds=_int(env, "AF_IDENTITY_JWKS_CACHE_SECONDS", 300, 10, 24 * 3600),
        identity_issuer=_str(env, "AF_IDENTITY_ISSUER", DEV_IDENTITY_ISSUER if dev else ""),
        identity_audience=_str(env, "AF_IDENTITY_AUDIENCE", DEV_IDENTITY_AUDIENCE if dev else ""),
        identity_max_lifetime_seconds=_int(
            env, "AF_IDENTITY_MAX_LIFETIME_SECONDS", IDENTITY_MAX_LIFETIME_SECONDS, 60, IDENTITY_MAX_LIFETIME_SECONDS),
        identity_email_domains=_email_domains(env),
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
        max_body_bytes=_int(env, "AF_MAX_BODY_BYTES", 1024 * 1024, 4 * 1024, 10 * 1024 * 1024),
        rest_channel_enabled=_bool(env, "AF_REST_CHANNEL", dev),
        leader_messages_per_minute=_int(env, "AF_LEADER_MESSAGES_PER_MINUTE", 0 if dev else 30, 0, 10_000),
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
        trainer_root=_path(env, "AF_TRAINER_ROOT", PROJECT_ROOT),
        trainer_python=_str(env, "AF_TRAINER_PYTHON", ""),
        # Development sets only: the sealed batches (blind-c's messages, blind-d) are never shown
        # message by message, or they stop being blind (tests/eval/README.md).
        trainer_eval_sets=_list(env, "AF_TRAINER_EVAL_SETS", (
            "tests/heldout/form_questions.yml", "tests/eval/dev-outside.yml", "tests/eval/blind-a.yml",
            "tests/eval/blind-b.yml")),
        trainer_story_tests=_bool(env, "AF_TRAINER_STORY_TESTS", True),
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
    if not dev:
        problems = _production_problems(env, settings)
        if problems:
            raise ConfigError(
                "AF-assistenten starter ikke i drift (AF_MODE=production):\n"
                + "\n".join(f"- {problem}" for problem in problems)
                + f"\n{_NEW_SECRET_HINT}"
            )
    return settings


def _production_problems(env: Mapping[str, str], settings: Settings) -> List[str]:
    """What stops production: development values, short keys, missing secrets. Never a value."""
    problems: List[str] = []
    development_values = _development_values()
    secrets = {
        "RASA_API_TOKEN": settings.rasa_api_token,
        "AF_IDENTITY_JWT_KEY": settings.identity_jwt_key,
        "AF_WEB_SESSION_KEY": settings.web_session_key,
        "SERVICENOW_USERNAME": settings.servicenow_username,
        "SERVICENOW_PASSWORD": settings.servicenow_password,
        "SERVICENOW_CLIENT_ID": settings.servicenow_client_id,
        "SERVICENOW_CLIENT_SECRET": settings.servicenow_client_secret,
        "AF_POSTGRES_PASSWORD": settings.postgres_password,
        "AF_REDIS_PASSWORD": settings.redis_password,
    }
    assert set(secrets) == set(_SECRET_NAMES)
    for name, value in secrets.items():
        if value and value in development_values:
            problems.append(f"{_source(env, name)} har en udviklingsværdi. Den er offentlig og må ikke bruges "
                            "i drift. Sæt en ny, tilfældig værdi.")
    for name, value in (("AF_IDENTITY_ISSUER", settings.identity_issuer),
                        ("AF_IDENTITY_AUDIENCE", settings.identity_audience)):
        if value and value in development_values:
            problems.append(f"{name} har udviklingsværdien. Sæt den værdi, intranettet bruger i sine tokens.")
    minimum = {"RASA_API_TOKEN": MIN_SECRET_LENGTH, "AF_WEB_SESSION_KEY": MIN_SECRET_LENGTH,
               "AF_IDENTITY_JWT_KEY": max([MIN_SECRET_LENGTH] + [HMAC_ALGORITHMS.get(a, 0)
                                                                 for a in settings.identity_jwt_algorithms])}
    for name, length in minimum.items():
        value = secrets[name]
        if value and value not in development_values and len(value) < length:
            problems.append(f"{_source(env, name)} er for kort. Brug mindst {length} tilfældige tegn.")

    def missing(name: str, why: str) -> None:
        problems.append(f"{name} mangler ({why}). Sæt den i miljøet eller i en fil med {name}_FILE.")

    if not settings.rasa_api_token:
        missing("RASA_API_TOKEN", "Rasas HTTP-API og konsollen bruger den")
    identity_configured = bool(settings.identity_jwt_key or settings.identity_asymmetric)
    if settings.identity_required and not identity_configured:
        problems.append(
            "AF_IDENTITY_JWT_KEY mangler, eller AF_IDENTITY_PUBLIC_KEY / AF_IDENTITY_JWKS_URL, hvis intranettet "
            "underskriver med en privat nøgle (bedst). Uden den kan ingen leder logge ind.")
    if settings.identity_required or identity_configured:
        for name, value in (("AF_IDENTITY_ISSUER", settings.identity_issuer),
                            ("AF_IDENTITY_AUDIENCE", settings.identity_audience)):
            if not value:
                problems.append(f"{name} mangler. Sæt den værdi ('iss' / 'aud'), intranettet skriver i sine tokens.")
    if settings.servicenow_url:
        oauth = (settings.servicenow_client_id, settings.servicenow_client_secret)
        basic = (settings.servicenow_username, settings.servicenow_password)
        if any(oauth) and not all(oauth):
            problems.append("SERVICENOW_CLIENT_ID og SERVICENOW_CLIENT_SECRET skal sættes sammen.")
        if any(basic) and not all(basic):
            problems.append("SERVICENOW_USERNAME og SERVICENOW_PASSWORD skal sættes sammen.")
        if not any(oauth) and not any(basic):
            problems.append("SERVICENOW_URL er sat, men login til ServiceNow mangler: sæt SERVICENOW_CLIENT_ID og "
                            "SERVICENOW_CLIENT_SECRET (OAuth) eller SERVICENOW_USERNAME og SERVICENOW_PASSWORD.")
    return problems


def require_web_session_key(settings: Settings) -> None:
    """The web server (supporter console) needs AF_WEB_SESSION_KEY in production."""
    if not settings.development and not settings.web_session_key:
        raise ConfigError("AF_WEB_SESSION_KEY mangler. Konsollens login kræver en nøgle på mindst "
                          f"{MIN_SECRET_LENGTH} tilfældige tegn (eller en fil med AF_WEB_SESSION_KEY_FILE). "
                          f"{_NEW_SECRET_HINT}")


def settings_at_start(web_server: bool = False) -> Settings:
    """``get_settings()`` for a process's start: a configuration error ends the process with its
    Danish message on stderr and exit code 2 (no traceback, never a secret)."""
    try:
        settings = get_settings()
        if web_server:
            require_web_session_key(settings)
    except ConfigError as exc:
        print(f"Konfigurationsfejl: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return load_settings()
