"""REST channel for tests and integrations: Rasa's, with our inbound hooks.

credentials.yml::

    channels.rest_channel.AfRestInput: {}

``POST /webhooks/rest/webhook`` with ``{"sender": ..., "message": ...,
"metadata": {"identity_token": ...}}``. Differences from Rasa's ``RestInput``:

* When ``identity_required`` the metadata must carry a valid identity token;
  otherwise 403 with a polite Danish message in the usual reply format.
* Requests from a browser origin not in ``settings.allowed_origins`` are
  refused (403), so another web page cannot post into a conversation.
* Malformed bodies get 400 (never 500); ``sender`` is required.
* The text goes through ``channels.inbound.prepare`` (CPR masking, length
  limit, identity payload stripping, metadata whitelist); the client cannot
  choose ``input_channel``.

``name()`` stays "rest".
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Optional, Text, Union

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse, ResponseStream

from af_core.leader_rate import LeaderRate
from af_core.privacy import contains_cpr
from af_core.settings import Settings, get_settings
from channels import conversation, inbound

logger = logging.getLogger(__name__)

MAX_SENDER_LENGTH = 128
# Responses in domain/channel.yml.
BAD_REQUEST = "utter_channel_bad_request"
ORIGIN_REFUSED = "utter_channel_origin_refused"
REST_OFF = "utter_channel_rest_off"
RESPONSES = (BAD_REQUEST, ORIGIN_REFUSED, REST_OFF)


def _reply(sender: Any, name: str, status: int) -> HTTPResponse:
    """Response ``name`` (domain/channel.yml) in the REST channel's format."""
    recipient = sender if isinstance(sender, str) else ""
    return response.json([{"recipient_id": recipient, "text": inbound.say(name), "response": name}], status=status)


class AfRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def __init__(self, settings: Optional[Settings] = None) -> None:
        self._settings = settings
        self._rate: Optional[LeaderRate] = None

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        custom_webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @custom_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @custom_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> Union[ResponseStream, HTTPResponse]:
            settings = self.settings
            if not settings.rest_channel_enabled:
                # Leaders use socket.io; REST is for tests and integrations (AF_REST_CHANNEL).
                return _reply(None, REST_OFF, 404)
            origin = request.headers.get("origin")
            if origin and origin not in settings.allowed_origins:
                return _reply(None, ORIGIN_REFUSED, 403)
            try:
                body = request.json
            except Exception:  # sanic raises InvalidUsage on malformed JSON
                body = None
            if not isinstance(body, dict):
                return _reply(None, BAD_REQUEST, 400)
            sender = body.get("sender")
            if isinstance(sender, (int, float)) and not isinstance(sender, bool):
                sender = str(sender)
            if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_LENGTH:
                return _reply(None, BAD_REQUEST, 400)
            if inbound.clean_text(sender) != sender or contains_cpr(sender):
                # the sender id is stored as the conversation's key, unmasked
                return _reply(None, BAD_REQUEST, 400)

            prepared = inbound.prepare(body.get("message"), body.get("metadata"), settings)
            if prepared.refused:
                return _reply(sender, prepared.refusal or inbound.REFUSAL_MISSING, 403)
            email = prepared.identity.email if prepared.identity else None
            if self._rate is None:
                self._rate = LeaderRate(settings.leader_messages_per_minute)
            if not self._rate.allow(email):
                return _reply(sender, inbound.TOO_FAST, 429)
            state = await conversation.read(request.app, sender)
            if not conversation.may_use(state, email, settings.identity_required):
                # Another leader's conversation (or, when identity is required, one that
                # cannot be read): nothing is passed on, nothing of it is shown.
                logger.warning("REST-besked afvist: samtalen tilhører en anden")
                return _reply(sender, inbound.REFUSAL_FOREIGN, 403)
            inbound.finish(prepared, state)

            if request.args.get("stream", "false").lower() == "true":
                return response.stream(
                    self.stream_response(on_new_message, prepared.text, sender, self.name(), prepared.metadata),
                    content_type="text/event-stream",
                )
            collector = CollectingOutputChannel()
            try:
                await on_new_message(
                    UserMessage(
                        prepared.text, collector, sender, input_channel=self.name(), metadata=prepared.metadata
                    )
                )
            except asyncio.CancelledError:
                logger.error("REST-besked fra %s fik timeout", sender)
            except Exception:
                logger.exception("REST-besked fra %s fejlede", sender)
            notices = [{"recipient_id": sender, "text": text} for text in prepared.notices]
            return response.json(notices + collector.messages)

        return custom_webhook
