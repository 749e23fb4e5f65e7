"""Who the leader is: a signed identity token from the intranet.

The intranet (or, in development mode, our own page for demo leaders) signs a
JWT with the leader's name, e-mail, institution and AF unit. It travels in the
channel metadata as ``identity_token``. Nothing is trusted before it is checked
here: the signature with one of the configured algorithms (never ``none``, never
HS and RS/EdDSA mixed), the issuer (``iss``) and audience (``aud``), that it was
issued (``iat``) and expires (``exp``) with a life of at most
``identity_max_lifetime_seconds`` (12 hours at most), and that ``email`` is one
plain address (in an allowed domain, when there is a list). The identity slots
are only ever set from a verified token, never from what the leader types.

Keys (af_core/settings.py): a shared HMAC key (HS256/384/512, the development
default), or better the intranet's public key (PEM) or its JWKS URL
(RS*/PS*/ES*/EdDSA), so no host of ours holds a key that can sign an identity.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Dict, Mapping, Optional, Tuple

import jwt

from af_core.settings import HMAC_ALGORITHMS, Settings, get_settings

logger = logging.getLogger(__name__)

METADATA_KEY = "identity_token"
CLAIMS = ("name", "email", "institution")
# A real token is well under 2 kB; anything far longer is not worth parsing.
MAX_TOKEN_LENGTH = 8192
# How far the intranet's clock may run ahead of ours (for iat and nbf). exp has no leeway.
CLOCK_SKEW_SECONDS = 30
MAX_CLAIM_LENGTH = 200
# One plain address: ASCII letters, digits and . _ % + - before the @ (no dot first, last or twice);
# a domain of letters, digits and hyphens with at least one dot and a top-level domain of letters.
_EMAIL_RE = re.compile(
    r"\A(?=.{3,254}\Z)(?=[^@]{1,64}@)[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z"
)


@dataclass(frozen=True)
class Identity:
    name: str
    email: str
    institution: str
    unit: str = ""

    def as_dict(self) -> Dict[str, str]:
        return asdict(self)


class IdentityError(ValueError):
    """The token is missing, expired, wrongly signed or incomplete.

    The message is a short Danish reason; the channels read "mangler" and "udløbet".
    """


def issue_token(identity: Mapping[str, str], settings: Optional[Settings] = None, ttl_seconds: int = 8 * 3600) -> str:
    """Sign a token like the intranet does: for the development page and tests only.

    Refused in production (there the intranet signs, and we may not even hold a key that can)
    and when the settings have no shared HMAC key. A negative ``ttl_seconds`` gives an expired
    token (for tests); more than the lifetime cap is refused.
    """
    settings = settings or get_settings()
    if not settings.development:
        raise IdentityError("kun i udviklingstilstand: i drift underskriver intranettet identitetstokens")
    if not settings.identity_jwt_key or settings.identity_jwt_algorithm not in HMAC_ALGORITHMS:
        raise IdentityError("Ingen nøgle til at underskrive identitetstokens (AF_IDENTITY_JWT_KEY med HS256)")
    if ttl_seconds > settings.identity_max_lifetime_seconds:
        raise IdentityError(f"for lang levetid: højst {settings.identity_max_lifetime_seconds} sekunder")
    now = int(time.time())
    payload: Dict[str, Any] = {key: identity.get(key, "") for key in (*CLAIMS, "unit")}
    payload.update({
        "iss": settings.identity_issuer, "aud": settings.identity_audience,
        "iat": now, "exp": now + ttl_seconds, "sub": identity.get("email", ""),
    })
    return jwt.encode(payload, settings.identity_jwt_key, algorithm=settings.identity_jwt_algorithm)


def valid_email(value: Any, domains: Tuple[str, ...] = ()) -> bool:
    """One plain e-mail address; with ``domains``, in one of them or a subdomain of one."""
    if not isinstance(value, str) or not _EMAIL_RE.match(value):
        return False
    if not domains:
        return True
    domain = value.rsplit("@", 1)[1].lower()
    return any(domain == allowed or domain.endswith("." + allowed) for allowed in domains)


def _plain_text(value: Any) -> Optional[str]:
    """A short claim without control characters, stripped; None when it is anything else."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_CLAIM_LENGTH:
        return None
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in value):
        return None
    return value.strip()


@lru_cache(maxsize=4)
def _public_key(pem: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem.encode("utf-8"))


_jwks_clients: Dict[Tuple[str, float, int], "jwt.PyJWKClient"] = {}
_jwks_lock = threading.Lock()


def _jwks_client(settings: Settings) -> "jwt.PyJWKClient":
    """One cached client per JWKS URL: keys are fetched at most once per cache period
    (and on an unknown ``kid`` at most every 30 s), with a timeout."""
    cache_key = (settings.identity_jwks_url, settings.identity_jwks_timeout_seconds,
                 settings.identity_jwks_cache_seconds)
    with _jwks_lock:
        client = _jwks_clients.get(cache_key)
        if client is None:
            client = jwt.PyJWKClient(
                settings.identity_jwks_url, cache_keys=True, cache_jwk_set=True,
                lifespan=settings.identity_jwks_cache_seconds, timeout=settings.identity_jwks_timeout_seconds,
                headers={"User-Agent": "AF-assistenten"},
            )
            _jwks_clients[cache_key] = client
        return client


def _is_public_key(key: Any) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    return isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey,
                            ed448.Ed448PublicKey))


def _verification_key(token: str, settings: Settings) -> Any:
    if settings.identity_jwks_url:
        try:
            key = _jwks_client(settings).get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            logger.warning("Intranettets nøgler (AF_IDENTITY_JWKS_URL) kunne ikke hentes: %s", exc)
            raise IdentityError("ugyldig") from exc
        except jwt.PyJWTError as exc:
            raise IdentityError("ugyldig") from exc
        if not _is_public_key(key):  # e.g. a symmetric ("oct") key published in the set
            raise IdentityError("ugyldig")
        return key
    if settings.identity_public_key:
        return _public_key(settings.identity_public_key)
    if settings.identity_jwt_key and settings.identity_jwt_algorithm in HMAC_ALGORITHMS:
        return settings.identity_jwt_key
    raise IdentityError("ingen nøgle konfigureret")


def verify_token(token: Any, settings: Optional[Settings] = None) -> Identity:
    settings = settings or get_settings()
    if not isinstance(token, str) or not token.strip():
        raise IdentityError("mangler")
    if len(token) > MAX_TOKEN_LENGTH:
        raise IdentityError("ugyldig")
    if not settings.identity_issuer or not settings.identity_audience:
        raise IdentityError("ingen udsteder eller modtager konfigureret")
    key = _verification_key(token, settings)
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=list(settings.identity_jwt_algorithms),
            issuer=settings.identity_issuer,
            audience=settings.identity_audience,
            leeway=0,
            options={
                "require": ["exp", "iat", "iss", "aud"],
                "verify_iat": False,  # checked below, with leeway for the intranet's clock
                "verify_nbf": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.ExpiredSignatureError as exc:
        raise IdentityError("udløbet") from exc
    except jwt.PyJWTError as exc:
        raise IdentityError("ugyldig") from exc
    now = time.time()
    try:
        issued, expires = int(payload["iat"]), int(payload["exp"])
        not_before = int(payload.get("nbf", issued))
    except (TypeError, ValueError, OverflowError) as exc:
        raise IdentityError("ugyldig") from exc
    if issued > now + CLOCK_SKEW_SECONDS or not_before > now + CLOCK_SKEW_SECONDS:
        raise IdentityError("ugyldig: ikke gyldigt endnu")
    if expires - issued > settings.identity_max_lifetime_seconds:
        raise IdentityError("ugyldig: for lang levetid")
    if not valid_email(payload.get("email"), settings.identity_email_domains):
        raise IdentityError("ugyldig e-mail")
    values = {key: _plain_text(payload.get(key)) for key in (*CLAIMS, "unit")}
    if any(value is None for value in values.values()):
        raise IdentityError("ugyldig")
    return Identity(**values)  # type: ignore[arg-type]


# What our channels store with each message instead of the raw token: the claims they verified
# and a hash of the token (channels/inbound.py). A token kept in the tracker store could be
# replayed until it expires by anyone who can read the store; the claims cannot sign anything.
CLAIMS_METADATA_KEY = "identity"
TOKEN_HASH_METADATA_KEY = "identity_token_sha256"


def metadata_for(identity: Identity, token: str) -> Dict[str, Any]:
    """The message metadata that records a verified identity (never the token itself)."""
    return {
        CLAIMS_METADATA_KEY: identity.as_dict(),
        TOKEN_HASH_METADATA_KEY: hashlib.sha256(token.encode("utf-8")).hexdigest(),
    }


def _from_claims(claims: Any, settings: Settings) -> Optional[Identity]:
    if not isinstance(claims, Mapping) or not valid_email(claims.get("email"), settings.identity_email_domains):
        return None
    values = {key: _plain_text(claims.get(key, "")) for key in (*CLAIMS, "unit")}
    if any(value is None for value in values.values()):
        return None
    return Identity(**values)  # type: ignore[arg-type]


def identity_from_metadata(metadata: Optional[Mapping[str, Any]], settings: Optional[Settings] = None) -> Optional[Identity]:
    """The verified identity in a message's metadata, or None.

    Our channels verify the token on arrival and pass on only its claims (``metadata_for``);
    a client's own metadata never reaches Rasa (channels/inbound.py), so claims there were
    verified. A token (older conversations, or a caller of Rasa's HTTP API) is verified here.
    """
    if not isinstance(metadata, Mapping):
        return None
    settings = settings or get_settings()
    if CLAIMS_METADATA_KEY in metadata:
        return _from_claims(metadata.get(CLAIMS_METADATA_KEY), settings)
    try:
        return verify_token(metadata.get(METADATA_KEY), settings)
    except IdentityError:
        return None
