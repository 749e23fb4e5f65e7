"""A small async client for Rasa's HTTP API (token-protected), used by the supporter console.

* ``tracker(conversation_id)`` – the conversation's events (transcript, the
  leader's messages while the conversation is paused).
* ``append(conversation_id, events, deliver=True)`` – ``POST
  /conversations/{id}/tracker/events?output_channel=latest&execute_side_effects=true``:
  bot events are stored AND sent to the leader over the channel they last
  used (socket.io), ``pause``/``resume`` change whether the bot answers.

Every call has a timeout. It authenticates with a short-lived bearer JWT in the
``Authorization`` header (``af_core.rasa_http``), never with a token in the URL, and it
calls Rasa on its internal address (``AF_RASA_URL``), not through the public proxy.
"""
from __future__ import annotations

from typing import Any, Dict, List
from urllib.parse import quote

import aiohttp

from af_core import rasa_http
from af_core.settings import Settings

TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


class RasaApiError(RuntimeError):
    """Rasa's HTTP API did not do what we asked."""


class RasaApi:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.base = settings.rasa_url.rstrip("/")
        self.settings = settings
        self.session = session

    def _url(self, conversation_id: str, suffix: str) -> str:
        return f"{self.base}/conversations/{quote(conversation_id, safe='')}/{suffix}"

    async def tracker(self, conversation_id: str) -> Dict[str, Any]:
        try:
            async with self.session.get(
                self._url(conversation_id, "tracker"), headers=rasa_http.auth_headers(self.settings), timeout=TIMEOUT
            ) as response:
                if response.status != 200:
                    raise RasaApiError(f"tracker: HTTP {response.status}")
                return await response.json()
        except aiohttp.ClientError as exc:
            raise RasaApiError(f"tracker: {exc.__class__.__name__}") from exc

    async def append(self, conversation_id: str, events: List[Dict[str, Any]], deliver: bool = True) -> None:
        params: Dict[str, str] = {}
        if deliver:
            params.update({"output_channel": "latest", "execute_side_effects": "true"})
        try:
            async with self.session.post(
                self._url(conversation_id, "tracker/events"),
                params=params,
                json=events,
                headers=rasa_http.auth_headers(self.settings),
                timeout=TIMEOUT,
            ) as response:
                if response.status != 200:
                    raise RasaApiError(f"events: HTTP {response.status}")
                await response.read()
        except aiohttp.ClientError as exc:
            raise RasaApiError(f"events: {exc.__class__.__name__}") from exc
