"""Every Rasa replica follows the model in service (models/i-drift), fast parts (issue 15).
tests/test_scaled.py shows two real replicas switching and rolling back."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from scripts import model_watch
from trainer import serving


class _Processor:
    def __init__(self, name):
        self.model_filename = name
        self.domain = SimpleNamespace(responses={"utter_x": [{"text": name}]})


def _app(name):
    agent = SimpleNamespace(processor=_Processor(name), tracker_store=SimpleNamespace(domain=None),
                            lock_store="locks", action_endpoint="actions", nlg=None, http_interpreter=None)
    return SimpleNamespace(ctx=SimpleNamespace(agent=agent))


def test_a_replica_loads_what_make_activate_put_into_service_and_follows_a_rollback(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("af-a.tar.gz", "af-b.tar.gz"):
        (models / name).write_bytes(b"model")
    loaded = []
    monkeypatch.setattr(model_watch, "_load_processor", lambda agent, path: loaded.append(path.name) or _Processor(path.name))
    app, failed = _app("af-a.tar.gz"), set()
    assert asyncio.run(model_watch.check_once(app, models, failed)) is None  # no pointer yet: keep it

    activate = ["activate", "--force", "--no-reload", "--root", str(tmp_path), "--model"]
    assert serving.main(activate + ["af-a.tar.gz"]) == 0  # what it serves already: nothing to load
    assert asyncio.run(model_watch.check_once(app, models, failed)) is None
    assert serving.main(activate + ["af-b.tar.gz"]) == 0
    assert asyncio.run(model_watch.check_once(app, models, failed)) == "af-b.tar.gz"
    assert app.ctx.agent.processor.model_filename == "af-b.tar.gz"
    assert app.ctx.agent.tracker_store.domain is app.ctx.agent.processor.domain  # same stores, new domain
    assert asyncio.run(model_watch.check_once(app, models, failed)) is None  # already served: no reload

    assert serving.main(["rollback", "--no-reload", "--root", str(tmp_path)]) == 0
    assert asyncio.run(model_watch.check_once(app, models, failed)) == "af-a.tar.gz"
    assert loaded == ["af-b.tar.gz", "af-a.tar.gz"]


def test_a_model_that_will_not_load_leaves_the_replica_on_its_model_and_is_not_retried(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    (models / "af-broken.tar.gz").write_bytes(b"not a model")
    (models / "i-drift").write_text("af-broken.tar.gz\n")
    attempts = []

    def broken(agent, path):
        attempts.append(path.name)
        raise ValueError("tarfile.ReadError")

    monkeypatch.setattr(model_watch, "_load_processor", broken)
    app, failed = _app("af-a.tar.gz"), set()
    for _ in range(3):
        assert asyncio.run(model_watch.check_once(app, models, failed)) is None
    assert app.ctx.agent.processor.model_filename == "af-a.tar.gz" and attempts == ["af-broken.tar.gz"]


def test_a_pointer_to_a_missing_or_foreign_file_is_ignored(tmp_path):
    (tmp_path / "i-drift").write_text("../../etc/passwd\n")
    assert model_watch.wanted_model(tmp_path) is None
    (tmp_path / "i-drift").write_text("af-gone.tar.gz\n")
    assert model_watch.wanted_model(tmp_path) is None
