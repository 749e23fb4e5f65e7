"""How our own tools authenticate to Rasa's HTTP API: a short-lived bearer token, never a URL.

Rasa 3.6 accepts its API token only in the query string (``?token=``), where proxies, access logs
and browser histories keep it. Our Rasa server is therefore started without ``--auth-token`` and
with JWT authentication instead (``scripts/rasa_server.py``): every caller sends
``Authorization: Bearer <JWT>``, signed with ``RASA_API_TOKEN`` (HS256), role ``admin``, valid
for a few minutes. A URL never carries a secret.

Used by the web server (supporter console), the model activation, ``make run``'s readiness check,
the evaluation scripts and the tests.
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import jwt

from af_core.settings import Settings, get_settings

ALGORITHM = "HS256"
DEFAULT_TTL_SECONDS = 300


def bearer_token(secret: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """An admin JWT for Rasa's HTTP API, signed with ``secret`` (the server's RASA_API_TOKEN)."""
    if not secret:
        raise RuntimeError("RASA_API_TOKEN er ikke sat")
    now = int(time.time())
    payload = {"user": {"username": "af-assistent", "role": "admin"}, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def headers_for_secret(secret: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> Dict[str, str]:
    return {"Authorization": f"Bearer {bearer_token(secret, ttl_seconds)}"}


def auth_headers(settings: Optional[Settings] = None, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> Dict[str, str]:
    """Headers for one call (or a few minutes of calls) to Rasa's HTTP API."""
    settings = settings or get_settings()
    return headers_for_secret(settings.rasa_api_token, ttl_seconds)
