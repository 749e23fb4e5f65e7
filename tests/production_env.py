"""Valid production settings for tests, and a signer for identity tokens a production process accepts.

``issue_token`` is the development page's signer and refuses in production; a test that needs a
token for production settings signs it here, as the intranet would.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Optional

import jwt

# Fake values (they say so), long enough for production's minimum of 32 characters.
PRODUCTION_ENV: Dict[str, str] = {
    "AF_MODE": "production",
    "RASA_API_TOKEN": "test-rasa-api-token-kun-til-tests-0123456789",
    "AF_IDENTITY_JWT_KEY": "test-identitetsnoegle-kun-til-tests-0123456789",
    "AF_IDENTITY_ISSUER": "https://kkintra.test/login",
    "AF_IDENTITY_AUDIENCE": "af-assistenten-test",
}


def production_env(**overrides: Optional[str]) -> Dict[str, str]:
    """PRODUCTION_ENV with overrides; an override of None removes the variable."""
    env = dict(PRODUCTION_ENV)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def production_settings(**overrides: Optional[str]):
    from af_core.settings import load_settings

    return load_settings(production_env(**overrides))


def sign_token(identity: Mapping[str, str], settings, lifetime: int = 3600, key: Any = None,
               algorithm: Optional[str] = None, headers: Optional[Dict[str, Any]] = None,
               **claims: Any) -> str:
    """A token as the intranet signs it: iss, aud, iat, exp from ``settings``.

    ``claims`` override the standard ones; a claim set to None is left out.
    """
    now = int(time.time())
    payload: Dict[str, Any] = {k: identity.get(k, "") for k in ("name", "email", "institution", "unit")}
    payload.update({"iss": settings.identity_issuer, "aud": settings.identity_audience,
                    "iat": now, "exp": now + lifetime})
    if isinstance(identity.get("email"), str):
        payload["sub"] = identity["email"]
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, settings.identity_jwt_key if key is None else key,
                      algorithm=algorithm or settings.identity_jwt_algorithm, headers=headers)
