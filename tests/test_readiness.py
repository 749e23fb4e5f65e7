"""`make run` says it runs only when the assistant can answer (issue: a first run without a model
printed "kører" and every message got an empty reply)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from af_core.settings import load_settings
from scripts.run import readiness_problem


def serve(routes):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            status, body = routes.get(self.path.split("?")[0], (404, {}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("status, health, problem", [
    ((200, {"model_file": "af-123.tar.gz"}), (200, {"status": "ok"}), None),
    ((200, {"model_file": None}), (200, {"status": "ok"}), "ikke indlæst en model"),  # "No agent loaded"
    ((409, {"message": "No agent loaded"}), (200, {"status": "ok"}), "ikke indlæst en model"),
    ((200, {"model_file": "af-123.tar.gz"}), (500, {}), "Action-serveren svarer ikke"),
])
def test_ready_means_a_loaded_model_and_an_answering_action_server(status, health, problem):
    rasa = serve({"/status": status})
    actions = serve({"/health": health})
    try:
        settings = load_settings({"AF_MODE": "development", "AF_RASA_PORT": str(rasa.server_port),
                                  "AF_ACTIONS_PORT": str(actions.server_port)})
        found = readiness_problem(settings)
        assert (found is None) if problem is None else (problem in found)
    finally:
        rasa.shutdown()
        actions.shutdown()


def test_training_never_writes_to_the_stdout_that_make_run_reads_the_model_path_from(monkeypatch, tmp_path):
    """On a user's first Rasa run, Rasa prints a telemetry notice on stdout; make run read it as the
    model path. Training output goes to stderr, with telemetry off."""
    import sys

    from scripts import model

    calls = []

    def fake_run(command, **kwargs):
        calls.append(kwargs)
        target = model.MODELS / f"{command[command.index('--fixed-model-name') + 1]}.tar.gz"
        target.write_bytes(b"model")
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(model, "MODELS", tmp_path)
    monkeypatch.setattr(model.subprocess, "run", fake_run)
    path = model.ensure()
    assert path.exists()
    assert calls[0]["stdout"] is sys.stderr
    assert calls[0]["env"]["RASA_TELEMETRY_ENABLED"] == "false"
