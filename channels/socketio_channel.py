"""The leader's webchat channel: Rasa's socket.io channel, fixed and locked.

credentials.yml::

    channels.socketio_channel.AfSocketIOInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true
      metadata_key: customData

What differs from ``rasa.core.channels.socketio.SocketIOInput`` (Rasa 3.6):

* ``enter_room`` is awaited. With python-socketio >= 5.10 it is a coroutine
  and Rasa 3.6 calls it without ``await``: the socket never joins the
  session's room and bot replies never arrive. We await it when it returns
  an awaitable, so both old and new python-socketio work (the venv has 5.18).
* The signed identity token (``af_core.identity``) is checked at connect
  (socket.io ``auth: {"token": ...}``) and on every message
  (``customData.identity_token``). When ``identity_required`` a connection
  without a valid token is refused with a Danish message.
* A session id is bound to the leader (e-mail) who first used it, and a
  socket may only send into the session it was confirmed for: nobody can
  join or write into another leader's conversation by sending its id.
* Origins: only ``settings.allowed_origins`` may connect from a browser
  (checked at connect; CORS headers come from the Rasa server's ``cors``).
* Every message goes through ``channels.inbound.prepare`` (CPR masking,
  length limit, metadata whitelist) before Rasa sees it.
* With several Rasa replicas (``AF_SOCKETIO_MANAGER=redis``, the default with the
  Redis lock store) every emit goes through a Redis message queue, so a supporter's
  message sent through any replica reaches the leader's socket on another.

``name()`` stays "socketio", so ``output_channel=socketio`` in the HTTP API
(the supporter console) keeps working.
"""
from __future__ import annotations

import inspect
import logging
import re
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncManager, AsyncRedisManager, AsyncServer
from socketio.exceptions import ConnectionRefusedError

from af_core.identity import IdentityError, verify_token
from af_core.leader_rate import LeaderRate
from af_core.settings import Settings, get_settings
from channels import conversation, inbound

logger = logging.getLogger(__name__)

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# Responses in domain/channel.yml (the channel's own, besides those of channels.inbound).
ORIGIN_REFUSED = "utter_channel_origin_refused"
RESTARTED = "utter_channel_restarted"
RESPONSES = (ORIGIN_REFUSED, RESTARTED)


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable (python-socketio >= 5.10 made enter_room async)."""
    if inspect.isawaitable(value):
        return await value
    return value


def client_manager(settings: Settings) -> Optional[AsyncManager]:
    """With several Rasa replicas, a leader's socket is held by one of them, but a reply
    or a supporter's message (Rasa's HTTP API, ``output_channel=latest``) may be sent by
    another. A Redis message queue carries every emit to the replica holding the room.
    One replica needs none (``None``: python-socketio's in-process manager)."""
    if settings.socketio_manager != "redis":
        return None
    return AsyncRedisManager(settings.redis_url, channel=f"af-socketio-{settings.profile_dir.name}")


class AfSocketIOInput(SocketIOInput):
    """socket.io channel with the enter_room fix, identity check and inbound hooks."""

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        if credentials.get("jwt_key"):
            logger.warning("jwt_key ignoreres: kanalen tjekker identitetstokenet fra intranettet")
        return cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            credentials.get("namespace"),
            credentials.get("session_persistence", True),
            credentials.get("socketio_path", "/socket.io"),
            None,
            "HS256",
            credentials.get("metadata_key", "customData"),
        )

    def __init__(self, *args: Any, settings: Optional[Settings] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._settings = settings
        self._app: Any = None
        self._sid_email: Dict[str, Optional[str]] = {}
        self._sid_session: Dict[str, str] = {}
        self._rate: Optional[LeaderRate] = None

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    # -- helpers -------------------------------------------------------------
    async def _claim_session(self, requested: Any, email: Optional[str]) -> str:
        """The session id this socket may use: the requested one only when that conversation
        exists and belongs to this leader (the tracker store says so, on every replica);
        otherwise a new one made here, so nobody can pick an id for someone else to use."""
        if isinstance(requested, str) and SESSION_ID_RE.match(requested):
            state = await conversation.read(self._app, requested)
            if state is not None and state.exists:
                if conversation.may_use(state, email, self.settings.identity_required):
                    return requested
                logger.warning("Afviste at genbruge en samtale, der tilhører en anden")
        return uuid.uuid4().hex

    async def _say(self, sio: AsyncServer, sid: str, name: str) -> None:
        """Response ``name`` (domain/channel.yml) to this client only."""
        await sio.emit(self.bot_message_evt, {"text": inbound.say(name), "response": name}, room=sid,
                       namespace=self.namespace)

    # -- blueprint -----------------------------------------------------------
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        settings = self.settings
        # CORS headers come from the Rasa server's own CORS setting (sanic-cors,
        # `cors=settings.allowed_origins` in scripts/rasa_server.py); letting
        # engine.io add them as well doubles the header and browsers refuse.
        # The origin itself is checked in `connect` below, which covers the
        # websocket transport too (browsers apply no CORS to websockets).
        # Clients without an Origin header (servers, tests) are not browsers.
        sio = AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=[],
            client_manager=client_manager(settings),
            # the same limit as the REST channel (AF_MAX_BODY_BYTES, scripts/rasa_server.py)
            max_http_buffer_size=settings.max_body_bytes,
        )
        socketio_webhook = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio

        @socketio_webhook.listener("before_server_start")
        async def keep_app(app: Any, _loop: Any) -> None:
            self._app = app  # its agent's tracker store tells which buttons were offered

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            origin = environ.get("HTTP_ORIGIN")
            if origin and origin not in settings.allowed_origins:
                logger.warning("socket.io-forbindelse afvist fra fremmed origin %s", origin)
                raise ConnectionRefusedError(inbound.say(ORIGIN_REFUSED))
            token = auth.get("token") if isinstance(auth, dict) else None
            email: Optional[str] = None
            try:
                email = verify_token(token, settings).email
            except IdentityError as exc:
                if settings.identity_required:
                    logger.info("socket.io-forbindelse afvist: identitetstoken %s", exc)
                    refusal = inbound.REFUSAL_EXPIRED if str(exc) == "udløbet" else inbound.REFUSAL_MISSING
                    raise ConnectionRefusedError(inbound.say(refusal))
            self._sid_email[sid] = email
            return True

        @sio.on("disconnect", namespace=self.namespace)
        async def disconnect(sid: Text) -> None:
            self._sid_email.pop(sid, None)
            self._sid_session.pop(sid, None)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Optional[Dict] = None) -> None:
            data = data if isinstance(data, dict) else {}
            email = self._sid_email.get(sid)
            if self.session_persistence:
                session_id = await self._claim_session(data.get("session_id"), email)
                # THE FIX: python-socketio >= 5.10 returns a coroutine here.
                await maybe_await(sio.enter_room(sid, session_id, namespace=self.namespace))
            else:
                session_id = sid
            self._sid_session[sid] = session_id
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: Text, data: Any = None) -> None:
            if not isinstance(data, dict):
                return
            session_id = self._sid_session.get(sid)
            if session_id is None or (self.session_persistence and data.get("session_id") != session_id):
                await self._say(sio, sid, RESTARTED)
                return
            prepared = inbound.prepare(data.get("message", ""), data.get(self.metadata_key), settings)
            if prepared.refused:
                await self._say(sio, sid, prepared.refusal or inbound.REFUSAL_MISSING)
                return
            connected_as = self._sid_email.get(sid)
            if connected_as and prepared.identity and prepared.identity.email != connected_as:
                await self._say(sio, sid, inbound.REFUSAL_INVALID)
                return
            email = prepared.identity.email if prepared.identity else connected_as
            if self._rate is None:
                self._rate = LeaderRate(settings.leader_messages_per_minute)
            if not self._rate.allow(email):
                await self._say(sio, sid, inbound.TOO_FAST)
                return
            state = await conversation.read(self._app, session_id)
            if not conversation.may_use(state, email, settings.identity_required):
                logger.warning("socket.io-besked afvist: samtalen tilhører en anden")
                await self._say(sio, sid, inbound.REFUSAL_FOREIGN)
                return
            inbound.finish(prepared, state)
            for notice in prepared.notices:
                await sio.emit(self.bot_message_evt, {"text": notice}, room=session_id, namespace=self.namespace)
            message = UserMessage(
                prepared.text,
                SocketIOOutput(sio, self.bot_message_evt),
                session_id,
                input_channel=self.name(),
                metadata=prepared.metadata,
            )
            await on_new_message(message)

        return socketio_webhook
