"""Custom Rasa input channels for AF-assistenten (loaded via credentials.yml).

* ``channels.socketio_channel.AfSocketIOInput`` (name "socketio"): the leader's
  webchat. Fixes the Rasa 3.6 / python-socketio >= 5.10 ``enter_room`` bug.
* ``channels.rest_channel.AfRestInput`` (name "rest"): tests and integrations.

Both run every incoming message through ``channels.inbound.prepare`` before
Rasa sees it (CPR masking, length limit, identity token check, metadata
whitelist). Keep this file free of imports: Rasa imports the channel modules
by their dotted path.
"""
