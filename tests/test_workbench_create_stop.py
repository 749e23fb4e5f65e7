"""The workbench's "Ny blanket" / "Nyt regelemne" and "Stop træningen" (trainer/creating.py, trainer/jobs.py).

In-process, on the same copy of the project as tests/test_workbench.py (its fixtures). What it proves:

* the new routes refuse a client without a session, a supporter without the trainer role and a
  trainer without the session's CSRF token, and change nothing then;
* a new form or rule topic goes through the assistant's own validators, gets an id made from its
  title (or a chosen one, checked against the id rule and the ids in the file), is written as one
  plain added block (``git diff`` shows only added lines), is found by the catalogue search at once
  (no new model) and is in the audit log; two trainers adding at once lose nothing;
* stopping a training kills the child process and what it started (``rasa train``; here a stand-in
  that writes half a model and waits), the job says "stopped", no half-written model is left under
  the name the workbench would put into service, and the next training can start; the real
  ``trainer.tools.train`` moves a model into models/ only when it is whole.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from af_core.settings import PROJECT_ROOT
from trainer import creating, editing, jobs
from trainer.files import TrainerError
from trainer.project import Project
from tests.test_workbench import (  # noqa: F401 - fixtures
    ANNA, ANNA_PASSWORD, SOFIE, SOFIE_PASSWORD, login, post, project_copy, run, settings)

NEW_FORM = {
    "title": "Anmeldelse af arbejdsskade", "url": "{intranet}/af/blanketter/arbejdsskade", "area": "personale",
    "when": "Brug den, når en medarbejder kommer til skade på arbejdet, fx falder på legepladsen.",
    "words": "arbejdsskade\nulykke\nkom til skade\nfaldt på legepladsen\nskadet på jobbet\nfaldulykke\n"
             "gled i gården\nbidt af et barn",
}
NEW_TOPIC = {
    "title": "Tjenesterejser", "topic": "oekonomi", "url": "{intranet}/hr/tjenesterejser",
    "answer": "Du får dækket dine udgifter, når du rejser for arbejdet. Hotel og rejse bestilles gennem AF. "
              "Spørg AF, hvis du er i tvivl.",
    "words": "tjenesterejse\nrejse for arbejdet\nhotel på kursus\nrejseafregning", "forms": "koersel",
}


def _added_only(before: str, after: str):
    lines = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
             if not line.startswith(("---", "+++", "@@"))]
    assert lines and all(line.startswith("+") for line in lines), lines
    return [line[1:] for line in lines]


# ------------------------------------------------------------------------------ doors
def test_the_new_routes_refuse_without_the_role_and_without_csrf(settings, project_copy):
    forms = project_copy / "profiles" / "buf" / "forms.yml"
    before = forms.read_text()
    paths = [("GET", "/support/api/traener/new/form"), ("POST", "/support/api/traener/new/form/preview"),
             ("POST", "/support/api/traener/new/form"), ("POST", "/support/api/traener/new/faq"),
             ("POST", "/support/api/traener/train/stop")]

    async def scenario(client):
        anonymous = [(await client.request(m, p, json={"fields": NEW_FORM})).status for m, p in paths]
        csrf, _ = await login(client, SOFIE, SOFIE_PASSWORD)
        supporter = [(await client.request(m, p, json={"fields": NEW_FORM}, headers={"X-CSRF-Token": csrf})).status
                     for m, p in paths]
        await client.post("/support/logout", data={"csrf": csrf})
        csrf, _ = await login(client, ANNA, ANNA_PASSWORD, ip="10.20.0.3")
        no_token = [(await client.post(p, json={"fields": NEW_FORM})).status for m, p in paths if m == "POST"]
        forged = [(await client.post(p, json={"fields": NEW_FORM}, headers={"X-CSRF-Token": "forkert"})).status
                  for m, p in paths if m == "POST"]
        unknown = (await client.get("/support/api/traener/new/response")).status
        return anonymous, supporter, no_token, forged, unknown

    anonymous, supporter, no_token, forged, unknown = run(settings, scenario)
    assert set(anonymous) == {401} and set(supporter) == {403}
    assert set(no_token) == {403} and set(forged) == {403}
    assert unknown == 404  # only forms and rule topics can be made here
    assert forms.read_text() == before


# ------------------------------------------------------------------------------ new entries
def test_suggested_ids_follow_the_id_rule_and_never_clash():
    assert creating.suggest_id("Anmeldelse af arbejdsskade", []) == "anmeldelse_arbejdsskade"
    assert creating.suggest_id("Ændring på ø-året", ["aendring_oe_aaret"]) == "aendring_oe_aaret_2"
    assert creating.suggest_id("Ændring på ø-året", ["aendring_oe_aaret", "aendring_oe_aaret_2"]) == "aendring_oe_aaret_3"
    assert creating.suggest_id("25 års jubilæum", []) == "aars_jubilaeum"
    assert creating.suggest_id("!!!", [], "faq") == "emne"
    long = creating.suggest_id("Refusion af udgifter til kurser og efteruddannelse for pædagogisk personale", [])
    assert len(long) <= creating.SUGGESTED_ID and not long.endswith("_")
    from af_core.catalogue import ID_RE

    assert all(ID_RE.match(i) for i in ("anmeldelse_arbejdsskade", long))


def test_a_new_form_is_one_added_block_found_at_once_and_audited(settings, project_copy):
    forms = project_copy / "profiles" / "buf" / "forms.yml"
    before = forms.read_text()

    async def scenario(client):
        csrf, _ = await login(client, ANNA, ANNA_PASSWORD)
        empty = await (await client.get("/support/api/traener/new/form")).json()
        out = {"empty": empty}
        for name, fields in {
            "no_area": {**NEW_FORM, "area": ""},
            "bad_area": {**NEW_FORM, "area": "kantine"},
            "bad_link": {**NEW_FORM, "url": "javascript:alert(1)"},
            "bad_id": {**NEW_FORM, "id": "Ny Blanket"},
            "taken_id": {**NEW_FORM, "id": "koersel"},
            "reserved_id": {**NEW_FORM, "id": "ingen"},
        }.items():
            r = await post(client, csrf, "/support/api/traener/new/form", {"fields": fields})
            out[name] = (r.status, await r.json())
        out["preview"] = await (await post(client, csrf, "/support/api/traener/new/form/preview",
                                           {"fields": NEW_FORM})).json()
        assert forms.read_text() == before  # nothing written by a refusal or a preview
        r = await post(client, csrf, "/support/api/traener/new/form", {"fields": NEW_FORM})
        out["saved"] = (r.status, await r.json())
        r = await post(client, csrf, "/support/api/traener/new/form", {"fields": {**NEW_FORM, "words": "arbejdsskade"}})
        out["again"] = (r.status, await r.json())
        out["overview"] = await (await client.get("/support/api/traener/overview")).json()
        out["audit"] = await (await client.get("/support/api/traener/audit")).json()
        return out

    out = run(settings, scenario)
    assert [f["name"] for f in out["empty"]["fields"]] == ["id", "title", "url", "area", "when", "words"]
    assert out["empty"]["file"] == "profiles/buf/forms.yml"
    assert out["no_area"][0] == 400 and "skal udfyldes" in out["no_area"][1]["error"]
    assert out["bad_area"][0] == 400 and "area skal være en af" in out["bad_area"][1]["error"]  # the assistant's own
    assert out["bad_link"][0] == 400 and "Linket skal begynde" in out["bad_link"][1]["error"]
    assert out["bad_id"][0] == 400 and "små bogstaver" in out["bad_id"][1]["error"]
    assert out["taken_id"][0] == 409 and "findes allerede" in out["taken_id"][1]["error"]
    assert out["reserved_id"][0] == 400
    preview = out["preview"]
    assert preview["id"] == "anmeldelse_arbejdsskade" and preview["advice"] == []
    assert "Anmeldelse af arbejdsskade" in preview["messages"][0]["text"]
    assert "https://" in preview["messages"][0]["text"] and "{intranet}" not in preview["messages"][0]["text"]
    status, saved = out["saved"]
    assert status == 200 and saved["id"] == "anmeldelse_arbejdsskade"
    assert "skal ikke træne en ny model" in saved["message"]
    assert out["again"][0] == 200 and out["again"][1]["id"] == "anmeldelse_arbejdsskade_2"
    assert any("mindst 8 ord" in a for a in out["again"][1]["advice"])

    added = _added_only(before, forms.read_text())
    assert added[:5] == ["", "  - id: anmeldelse_arbejdsskade", "    title: Anmeldelse af arbejdsskade",
                         '    url: "{intranet}/af/blanketter/arbejdsskade"', "    area: personale"]
    assert "    words:" in added and "      - faldt på legepladsen" in added
    data = yaml.safe_load(forms.read_text())
    assert [f["id"] for f in data["forms"]][-2:] == ["anmeldelse_arbejdsskade", "anmeldelse_arbejdsskade_2"]
    assert data["forms"][:-2] == yaml.safe_load(before)["forms"]

    # the chat finds it now, from the catalogue: no new model
    from af_core.catalogue import search_forms
    from af_core.profile import load_profile

    profile = load_profile(project_copy / "profiles" / "buf")
    assert search_forms("en pædagog gled i gården og kom til skade", profile).best.id == "anmeldelse_arbejdsskade"
    assert {"id": "anmeldelse_arbejdsskade", "title": "Anmeldelse af arbejdsskade", "area": "personale"} in \
        out["overview"]["forms"]
    # the hash it returned is the one an edit starts from
    project = Project.for_settings(settings)
    assert editing.load(project, "form", "anmeldelse_arbejdsskade")["hash"] == saved["hash"]
    entries = [(e["supporter"], e["action"], e["detail"]) for e in out["audit"]["entries"]]
    assert (ANNA, "create", "blanketten anmeldelse_arbejdsskade: «Anmeldelse af arbejdsskade» "
                            "(profiles/buf/forms.yml)") in entries


def test_a_new_rule_topic_is_checked_written_and_found(settings, project_copy):
    project = Project.for_settings(settings)
    faq_file = project_copy / "profiles" / "buf" / "faq.yml"
    before = faq_file.read_text()
    with pytest.raises(TrainerError, match="findes ikke i forms.yml"):
        creating.create(project, "faq", {**NEW_TOPIC, "forms": "findes_ikke"})
    with pytest.raises(TrainerError, match="skal udfyldes"):
        creating.create(project, "faq", {**NEW_TOPIC, "answer": " "})
    assert faq_file.read_text() == before
    shown = creating.preview(project, "faq", {**NEW_TOPIC, "answer": "Kun én sætning."})
    assert any("2-4 korte sætninger (det har 1)" in a for a in shown["advice"])
    saved = creating.create(project, "faq", NEW_TOPIC)
    assert saved["id"] == "tjenesterejser"
    assert any("testsamtale" in a for a in saved["advice"])  # tests/test_faq.py wants a story per topic
    added = _added_only(before, faq_file.read_text())
    assert added[1:4] == ["  - id: tjenesterejser", "    title: Tjenesterejser", "    topic: oekonomi"]
    assert added[-2:] == ["    forms:", "      - koersel"]

    from af_core.catalogue import search_faq
    from af_core.profile import load_profile

    profile = load_profile(project_copy / "profiles" / "buf")
    found = search_faq("hvem betaler hotel på kursus", profile)
    assert found.best is not None and found.best.id == "tjenesterejser"


def test_two_trainers_adding_the_same_form_at_once_get_two_ids(settings, project_copy):
    project = Project.for_settings(settings)
    results, errors = [], []

    def add():
        try:
            results.append(creating.create(project, "form", NEW_FORM)["id"])
        except Exception as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == ["anmeldelse_arbejdsskade", "anmeldelse_arbejdsskade_2", "anmeldelse_arbejdsskade_3",
                               "anmeldelse_arbejdsskade_4"]
    ids = [f["id"] for f in yaml.safe_load((project_copy / "profiles" / "buf" / "forms.yml").read_text())["forms"]]
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------------------ stop a training
FAKE_RASA = """\
#!{python}
# A stand-in for rasa: validates at once; "trains" by writing half a model and waiting to be stopped.
import os, sys, time
from pathlib import Path
args = sys.argv[1:]
if args[:2] == ["data", "validate"]:
    sys.exit(0)
out = Path(args[args.index("--out") + 1])
name = args[args.index("--fixed-model-name") + 1]
Path(os.environ["FAKE_RASA_PIDS"]).open("a").write(f"{{os.getpid()}}\\n")
(out / (name + ".tar.gz")).write_bytes(b"\\x1f\\x8b half a model")
print("Epochs:  10%", flush=True)
if os.environ.get("FAKE_RASA_MODE") == "finish":
    (out / (name + ".tar.gz")).write_bytes(b"\\x1f\\x8b a whole model")
    sys.exit(0)
if os.environ.get("FAKE_RASA_MODE") == "crash":
    sys.exit(1)
time.sleep(600)
"""

FAKE_PYTHON = """\
#!/bin/sh
# The workbench's child (python -m trainer.tools retrain), with a stand-in rasa next to "its" Python.
exec {python} -c "import sys; sys.executable = '{bin}/python'; import runpy; runpy.run_module('trainer.tools', run_name='__main__')" "$3"
"""


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "rasa").write_text(FAKE_RASA.format(python=sys.executable))
    (folder / "python").write_text(FAKE_PYTHON.format(python=sys.executable, bin=folder))
    for name in ("rasa", "python"):
        (folder / name).chmod(0o755)
    monkeypatch.setenv("FAKE_RASA_PIDS", str(tmp_path / "rasa-pids.txt"))
    return folder


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _wait(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_stopping_a_training_kills_it_leaves_no_model_and_the_next_can_start(settings, project_copy, fake_bin,
                                                                              tmp_path):
    settings = dataclasses.replace(settings, trainer_python=str(fake_bin / "python"))
    project = Project.for_settings(settings)
    pids = tmp_path / "rasa-pids.txt"
    started = []

    async def scenario(client):
        csrf, _ = await login(client, ANNA, ANNA_PASSWORD)
        nothing = await post(client, csrf, "/support/api/traener/train/stop", {})
        out = {"nothing": (nothing.status, await nothing.json())}
        job = await (await post(client, csrf, "/support/api/traener/train", {})).json()
        started.append(job["pid"])
        assert _wait(lambda: pids.exists() and pids.read_text().strip()), (project.var_dir / "job.log").read_text()
        out["rasa"] = int(pids.read_text().split()[0])
        assert _wait(lambda: jobs.status(project).get("step") == "train")
        out["during"] = sorted(str(p.relative_to(project_copy / "models")) for p in
                               (project_copy / "models").rglob("*.tar.gz"))
        stop = await post(client, csrf, "/support/api/traener/train/stop", {})
        out["stopped"] = (stop.status, await stop.json())
        out["child_alive"], out["rasa_alive"] = _alive(job["pid"]), _alive(out["rasa"])
        again = await post(client, csrf, "/support/api/traener/train", {})
        out["again"] = (again.status, await again.json())
        started.append(out["again"][1].get("pid"))
        await post(client, csrf, "/support/api/traener/train/stop", {})
        out["audit"] = await (await client.get("/support/api/traener/audit")).json()
        return out

    try:
        out = run(settings, scenario)
    finally:
        for pid in filter(None, started):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    assert out["nothing"][0] == 409 and "ingen træning" in out["nothing"][1]["error"]
    assert len(out["during"]) == 1 and out["during"][0].startswith(jobs.TRAINING_DIR + "/")  # never in models/
    status, job = out["stopped"]
    assert status == 200 and job["state"] == "stopped" and job["message"] == "Træningen blev stoppet."
    assert job["stopped_by"] == ANNA and job["stopped_name"] == "Anna Berg"
    assert not out["child_alive"] and not out["rasa_alive"]  # the child and the rasa it started
    assert list((project_copy / "models").glob("*.tar.gz")) == []  # no half-written model to put into service
    assert not (project_copy / "models" / jobs.TRAINING_DIR).exists() or \
        not any((project_copy / "models" / jobs.TRAINING_DIR).iterdir())
    assert out["again"][0] == 200 and out["again"][1]["state"] == "running"  # the next one starts
    stops = [e["detail"] for e in out["audit"]["entries"] if e["action"] == "stop"]
    assert stops and "træningen, som Anna Berg startede (trin: Træner den nye model)" in stops[-1]


@pytest.mark.parametrize("mode", ["finish", "crash"])
def test_train_moves_a_model_into_models_only_when_it_is_whole(project_copy, fake_bin, monkeypatch, mode):
    from trainer import tools

    monkeypatch.setattr(sys, "executable", str(fake_bin / "python"))
    monkeypatch.setenv("FAKE_RASA_MODE", mode)
    stale = project_copy / "models" / jobs.TRAINING_DIR / "gammel"
    stale.mkdir(parents=True)
    (stale / "af-x.tar.gz").write_bytes(b"left by a stopped training")
    if mode == "finish":
        model = tools.train(project_copy, lambda f: None, job="j1")
        assert model.parent == project_copy / "models" and model.read_bytes() == b"\x1f\x8b a whole model"
    else:
        with pytest.raises(TrainerError, match="mislykkedes"):
            tools.train(project_copy, lambda f: None, job="j1")
        assert list((project_copy / "models").glob("*.tar.gz")) == []
    assert not any((project_copy / "models" / jobs.TRAINING_DIR).iterdir())  # its own folder and the stale one
