"""Who the leader is: a signed identity token from the intranet.

The intranet (or, in development mode, our own page for demo leaders) signs a
JWT with the leader's name, e-mail, institution and AF unit. It travels in the
channel metadata as ``identity_token``. Nothing is trusted before the
signature and expiry are verified here; the identity slots are only ever set
from a verified token, never from what the leader types.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional

import jwt

from actions.settings import Settings, get_settings

METADATA_KEY = "identity_token"
CLAIMS = ("name", "email", "institution")


@dataclass(frozen=True)
class Identity:
    name: str
    email: str
    institution: str
    unit: str = ""

    def as_dict(self) -> Dict[str, str]:
        return asdict(self)


class IdentityError(ValueError):
    """The token is missing, expired, wrongly signed or incomplete."""


def issue_token(identity: Mapping[str, str], settings: Optional[Settings] = None, ttl_seconds: int = 8 * 3600) -> str:
    """Sign a token (used by the development page and by tests)."""
    settings = settings or get_settings()
    if not settings.identity_jwt_key:
        raise IdentityError("Ingen nøgle til identitetstokens er sat (AF_IDENTITY_JWT_KEY)")
    now = int(time.time())
    payload: Dict[str, Any] = {key: identity.get(key, "") for key in (*CLAIMS, "unit")}
    payload.update({"iat": now, "exp": now + ttl_seconds, "sub": identity.get("email", "")})
    return jwt.encode(payload, settings.identity_jwt_key, algorithm=settings.identity_jwt_algorithm)


def verify_token(token: Any, settings: Optional[Settings] = None) -> Identity:
    settings = settings or get_settings()
    if not isinstance(token, str) or not token.strip():
        raise IdentityError("mangler")
    if not settings.identity_jwt_key:
        raise IdentityError("ingen nøgle konfigureret")
    try:
        payload = jwt.decode(
            token,
            settings.identity_jwt_key,
            algorithms=[settings.identity_jwt_algorithm],
            options={"require": ["exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise IdentityError("udløbet") from exc
    except jwt.PyJWTError as exc:
        raise IdentityError("ugyldig") from exc
    values = {key: str(payload.get(key) or "").strip() for key in (*CLAIMS, "unit")}
    if not values["email"] or "@" not in values["email"]:
        raise IdentityError("mangler e-mail")
    return Identity(**values)


def identity_from_metadata(metadata: Optional[Mapping[str, Any]], settings: Optional[Settings] = None) -> Optional[Identity]:
    """The verified identity in channel metadata, or None."""
    if not isinstance(metadata, Mapping):
        return None
    try:
        return verify_token(metadata.get(METADATA_KEY), settings)
    except IdentityError:
        return None
