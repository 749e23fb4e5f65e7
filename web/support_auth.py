"""Who may use the supporter console, and their sessions.

Supporters are configured by the operator in ``settings.supporters_file``
(default ``var/supporters.yml``)::

    supporters:
      - username: sofie.lund
        name: Sofie Lund
        password_hash: "scrypt$16384$8$1$<salt hex>$<hash hex>"
        roles: [supporter, trainer]   # optional; without it: [supporter]

Roles (``ROLES``): ``supporter`` answers leaders in the console at ``/support``;
``trainer`` improves the assistant in the workbench at ``/support/traener``
(web/workbench.py). They are separate permissions: each page and endpoint
checks its own role on every request, so a role taken away in the file works
at the next click.

Add one with ``python -m web.support add-supporter --username sofie.lund
--name "Sofie Lund"`` (asks for the password twice). Passwords are hashed
with scrypt from the standard library; the file is read again whenever it
changes (checked on every console request), so edits take effect without a
restart, and a supporter removed from it loses her sessions at once.

In development mode one demo supporter (``DEV_SUPPORTER_USERNAME`` /
``DEV_SUPPORTER_PASSWORD`` in af_core/settings.py, role supporter) and one demo
trainer (``DEV_TRAINER_USERNAME`` / ``DEV_TRAINER_PASSWORD``, role trainer) can
log in as well. They are kept in memory only and never written to the file, so
a production server using the same var/ folder never knows them.

Sessions: the cookie holds a random session id plus its HMAC with
``settings.web_session_key``; the store keeps only a hash of the id, the
supporter, the expiry (``settings.web_session_minutes`` after login) and the
session's CSRF token.

Login form: a signed double-submit nonce that carries when it was issued; it
expires after ``NONCE_SECONDS`` and the store refuses it the second time.

Known browser: after a successful login the browser gets a signed cookie naming
the supporter (``device_cookie``). Login attempts from it are throttled on their
own, so other people's wrong guesses never lock a supporter out of her own
browser (docs/handoff.md, "Login throttling").
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import yaml

from af_core.settings import (
    DEV_SUPPORTER_PASSWORD,
    DEV_SUPPORTER_USERNAME,
    DEV_TRAINER_PASSWORD,
    DEV_TRAINER_USERNAME,
    Settings,
)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
DEMO_SUPPORTER_NAME = "Sofie Lund"
DEMO_TRAINER_NAME = "Anna Berg"
SUPPORTER, TRAINER = "supporter", "trainer"
ROLES = (SUPPORTER, TRAINER)
DEFAULT_ROLES = (SUPPORTER,)  # an entry without "roles:" (every file written before roles existed)
MIN_PASSWORD_LENGTH = 12
NONCE_SECONDS = 600  # a login form is good for ten minutes, once
DEVICE_DAYS = 180  # how long a browser is remembered as a supporter's own

log = logging.getLogger(__name__)


class SupporterFileError(ValueError):
    """The supporters file is malformed."""


@dataclass(frozen=True)
class Supporter:
    username: str
    name: str
    password_hash: str
    roles: Tuple[str, ...] = DEFAULT_ROLES

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else self.username


def hash_password(password: str, salt: Optional[bytes] = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p),
            dklen=len(digest_hex) // 2, maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def valid_username(username: str) -> bool:
    return 2 <= len(username) <= 64 and set(username) <= USERNAME_CHARS


def load_supporters(path: Path) -> Dict[str, Supporter]:
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("supporters") or []
    if not isinstance(entries, list):
        raise SupporterFileError(f"{path}: 'supporters' skal være en liste")
    found: Dict[str, Supporter] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise SupporterFileError(f"{path}: hver medarbejder skal have username, name og password_hash")
        username = str(entry.get("username", "")).strip().lower()
        name = str(entry.get("name", "")).strip()
        password_hash = str(entry.get("password_hash", "")).strip()
        if not valid_username(username) or not name or not password_hash.startswith("scrypt$"):
            raise SupporterFileError(f"{path}: ugyldig medarbejder {username or '(uden navn)'}")
        found[username] = Supporter(username, name, password_hash, _roles(entry.get("roles"), path, username))
    return found


def _roles(value: object, path: Path, username: str) -> Tuple[str, ...]:
    """The roles of one entry: a list of ``ROLES``; none given means supporter only."""
    if value is None:
        return DEFAULT_ROLES
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(r, str) and r in ROLES for r in value):
        raise SupporterFileError(f"{path}: {username}: roles skal være en liste med {' og/eller '.join(ROLES)}")
    return tuple(r for r in ROLES if r in value)


def parse_roles(text: str) -> Tuple[str, ...]:
    """'supporter,trainer' (the CLI's --roles) as roles; SupporterFileError in Danish otherwise."""
    names = [part.strip().lower() for part in (text or "").split(",") if part.strip()]
    if not names or any(name not in ROLES for name in names):
        raise SupporterFileError(f"Roller skal være {', '.join(ROLES)} (adskilt med komma).")
    return tuple(r for r in ROLES if r in names)


_demo_hash: List[str] = []
_demo_trainer_hash: List[str] = []


def demo_supporter() -> Supporter:
    if not _demo_hash:
        _demo_hash.append(hash_password(DEV_SUPPORTER_PASSWORD))
    return Supporter(DEV_SUPPORTER_USERNAME, DEMO_SUPPORTER_NAME, _demo_hash[0])


def demo_trainer() -> Supporter:
    if not _demo_trainer_hash:
        _demo_trainer_hash.append(hash_password(DEV_TRAINER_PASSWORD))
    return Supporter(DEV_TRAINER_USERNAME, DEMO_TRAINER_NAME, _demo_trainer_hash[0], (TRAINER,))


_file_cache: Dict[str, Tuple[Optional[tuple], Dict[str, Supporter]]] = {}
_file_lock = threading.Lock()


def _file_supporters(path: Path) -> Dict[str, Supporter]:
    """``load_supporters(path)``, read again only when the file changed (size, time, inode)."""
    try:
        st = path.stat()
        version: Optional[tuple] = (st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        version = None
    with _file_lock:
        cached = _file_cache.get(str(path))
        if cached is not None and cached[0] == version:
            return dict(cached[1])
    found = load_supporters(path) if version is not None else {}
    with _file_lock:
        _file_cache[str(path)] = (version, found)
    return dict(found)


def supporters(settings: Settings) -> Dict[str, Supporter]:
    found = _file_supporters(settings.supporters_file)
    if settings.development and DEV_SUPPORTER_USERNAME not in found:
        found[DEV_SUPPORTER_USERNAME] = demo_supporter()
    if settings.development and DEV_TRAINER_USERNAME not in found:
        found[DEV_TRAINER_USERNAME] = demo_trainer()
    return found


def is_supporter(settings: Settings, username: str) -> bool:
    """Whether ``username`` may still use the console (checked on every request).

    A broken supporters file fails closed: nobody is let in until it is fixed."""
    try:
        return username in supporters(settings)
    except (SupporterFileError, OSError, yaml.YAMLError) as exc:
        log.error("Medarbejderfilen kan ikke læses, så ingen kan bruge konsollen: %s", exc)
        return False


def has_role(settings: Settings, username: str, role: str) -> bool:
    """Whether ``username`` has ``role`` in the supporters file now (checked on every request;
    a broken file fails closed)."""
    try:
        person = supporters(settings).get(username)
    except (SupporterFileError, OSError, yaml.YAMLError) as exc:
        log.error("Medarbejderfilen kan ikke læses, så ingen kan bruge konsollen: %s", exc)
        return False
    return person is not None and person.has_role(role)


def authenticate(settings: Settings, username: str, password: str) -> Optional[Supporter]:
    """The supporter if the password is right (blocking: call it from a thread)."""
    username = (username or "").strip().lower()
    supporter = supporters(settings).get(username)
    if supporter is None:
        # Spend the same time as a real check, so response times do not reveal user names.
        verify_password(password or "", demo_supporter().password_hash)
        return None
    return supporter if verify_password(password or "", supporter.password_hash) else None


def add_supporter(path: Path, username: str, name: str, password: str,
                  roles: Tuple[str, ...] = DEFAULT_ROLES) -> Supporter:
    """Add or replace a supporter in the file (the CLI uses it). ``roles``: see ``ROLES``."""
    username = username.strip().lower()
    if not valid_username(username):
        raise SupporterFileError("Brugernavnet må kun have små bogstaver, tal, punktum, bindestreg og understreg.")
    if not name.strip():
        raise SupporterFileError("Skriv medarbejderens navn.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SupporterFileError(f"Adgangskoden skal være mindst {MIN_PASSWORD_LENGTH} tegn.")
    existing = load_supporters(path)
    if not roles or any(role not in ROLES for role in roles):
        raise SupporterFileError(f"Roller skal være {', '.join(ROLES)}.")
    existing[username] = Supporter(username, name.strip(), hash_password(password),
                                   tuple(r for r in ROLES if r in roles))
    write_supporters(path, existing.values())
    return existing[username]


def write_supporters(path: Path, entries: Iterable[Supporter]) -> None:
    """Write the supporters file (atomically, readable only by the owner)."""
    body = {
        "supporters": [
            {"username": s.username, "name": s.name, "password_hash": s.password_hash, "roles": list(s.roles)}
            for s in sorted(entries, key=lambda s: s.username)
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(
        "# Medarbejdere i AF's chat-konsol. Tilføj med: python -m web.support add-supporter\n"
        + yaml.safe_dump(body, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    tmp.chmod(0o600)
    tmp.replace(path)


# -- session cookies and CSRF ------------------------------------------------------
def _mac(settings: Settings, value: str) -> str:
    return hmac.new(settings.web_session_key.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()


def sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("ascii", "replace")).hexdigest()


def new_session_cookie(settings: Settings) -> tuple:
    """(cookie value, session id hash, csrf token, expires_at)."""
    sid = secrets.token_urlsafe(32)
    return (f"{sid}.{_mac(settings, 'session:' + sid)}", sid_hash(sid), secrets.token_urlsafe(32),
            time.time() + settings.web_session_minutes * 60)


def session_id_from_cookie(settings: Settings, value: Optional[str]) -> Optional[str]:
    """The session id hash for a correctly signed cookie, else None."""
    if not value or "." not in value or len(value) > 200:
        return None
    sid, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(settings, "session:" + sid)):
        return None
    return sid_hash(sid)


def login_nonce(settings: Settings, now: Optional[float] = None) -> tuple:
    """(cookie value, form value) for the login form's double-submit CSRF check.

    The nonce is ``<issued unix time>.<random>``; the cookie adds its HMAC."""
    issued = int(time.time() if now is None else now)
    nonce = f"{issued}.{secrets.token_urlsafe(24)}"
    return f"{nonce}.{_mac(settings, 'login:' + nonce)}", nonce


def login_nonce_ok(settings: Settings, cookie: Optional[str], form_value: Optional[str],
                   now: Optional[float] = None) -> bool:
    """The cookie is ours, matches the form, and the form is at most ``NONCE_SECONDS`` old.
    (That it was not used before is the store's job: ``HandoffStore.reserve_login``.)"""
    if not cookie or not form_value or "." not in cookie or len(cookie) > 200:
        return False
    nonce, mac = cookie.rsplit(".", 1)
    if not (hmac.compare_digest(mac, _mac(settings, "login:" + nonce)) and hmac.compare_digest(nonce, form_value)):
        return False
    try:
        issued = int(nonce.split(".", 1)[0])
    except ValueError:
        return False
    now = time.time() if now is None else now
    return issued - 5 <= now <= issued + NONCE_SECONDS


def nonce_hash(nonce: str) -> str:
    return hashlib.sha256(("login:" + nonce).encode("utf-8", "replace")).hexdigest()


def device_cookie(settings: Settings, username: str) -> str:
    """A signed cookie that remembers this browser as ``username``'s own (set after a right password)."""
    value = f"{username}:{secrets.token_urlsafe(18)}"
    return f"{value}.{_mac(settings, 'device:' + value)}"


def device_id(settings: Settings, value: Optional[str], username: str) -> Optional[str]:
    """A hash identifying the browser, if ``value`` is our signed cookie for ``username``; else None."""
    if not value or "." not in value or len(value) > 200:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(settings, "device:" + body)):
        return None
    owner, _, _ = body.partition(":")
    if owner != username:
        return None
    return hashlib.sha256(("device:" + body).encode("utf-8")).hexdigest()
