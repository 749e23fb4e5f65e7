"""The trainer's workbench (web/workbench.py, trainer/): roles, doors, and every operation on a copy.

In-process (aiohttp test server) on a copy of the project's data/, domain/ and profiles/ in a
temporary folder, so nothing in the checkout changes. What it proves:

* roles: supporter and trainer are separate permissions read from the supporters file
  (default: supporter only); the demo trainer exists only in development mode;
* every workbench route (walked from the router, so a new route is covered by itself) refuses a
  client without a session (401 / login page) and a supporter without the trainer role (403 /
  her own page), and every POST needs the session's CSRF token; the console refuses a trainer
  without the supporter role;
* annotating: an example lands in data/nlu/fra-traenere.yml; duplicates, examples closer to
  another intent and forms the catalogue search would not find are flagged before anything is
  added; "ignore" and notes to the catalogue owner; every change is in the audit log;
* two trainers at once: parallel annotations are all kept; an edit made from an old copy is
  refused with 409 instead of overwriting;
* editing a form, a rule answer and a response's wording: the assistant's own validators,
  a preview, and only the changed lines in the file;
* the review (trainer/review.py via the child process) with the conversation link, which only
  opens conversations the review showed;
* put into service only when the comparison approved it, or with a written reason; roll back.
"""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from af_core.settings import DEV_SUPPORTER_USERNAME, DEV_TRAINER_USERNAME, PROJECT_ROOT, load_settings
from trainer import annotate, editing, serving
from trainer.files import Conflict, TrainerError
from trainer.project import Project
from web import support_auth, workbench

ANNA, ANNA_PASSWORD = "anna.berg", "annas-test-kodeord-1"  # pragma: allowlist secret (test-only)
BO, BO_PASSWORD = "bo.both", "bos-test-kodeord-12"  # pragma: allowlist secret (test-only)
SOFIE, SOFIE_PASSWORD = "sofie.lund", "sofies-test-kodeord"  # pragma: allowlist secret (test-only)


@pytest.fixture
def project_copy(tmp_path):
    root = tmp_path / "projekt"
    root.mkdir()
    for name in ("data", "domain", "profiles"):
        shutil.copytree(PROJECT_ROOT / name, root / name)
    shutil.copy(PROJECT_ROOT / "config.yml", root / "config.yml")
    (root / "models").mkdir()
    return root


@pytest.fixture
def settings(tmp_path, project_copy):
    people = tmp_path / "supporters.yml"
    support_auth.add_supporter(people, SOFIE, "Sofie Lund", SOFIE_PASSWORD)  # supporter only
    support_auth.add_supporter(people, ANNA, "Anna Berg", ANNA_PASSWORD, (support_auth.TRAINER,))
    support_auth.add_supporter(people, BO, "Bo Both", BO_PASSWORD, support_auth.ROLES)
    return load_settings({
        "AF_MODE": "development", "AF_VAR_DIR": str(tmp_path / "var"), "AF_RASA_URL": "http://127.0.0.1:9",
        "AF_SUPPORTERS_FILE": str(people), "AF_TRAINER_ROOT": str(project_copy),
        "AF_PROFILE": str(project_copy / "profiles" / "buf"), "AF_TRACKER_DB_PATH": str(tmp_path / "tracker.db"),
        "AF_TRAINER_PYTHON": sys.executable, "AF_WEB_TRUSTED_PROXIES": "127.0.0.1",
    })


def run(settings, scenario):
    from web.app import create_app

    async def main():
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


async def login(client, username, password, ip="10.20.0.1"):
    page = await client.get("/support/login", headers={"X-Forwarded-For": ip})
    nonce = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    response = await client.post("/support/login", data={"username": username, "password": password, "csrf": nonce},
                                 headers={"X-Forwarded-For": ip}, allow_redirects=False)
    assert response.status == 303, await response.text()
    home = await client.get("/support", headers={"X-Forwarded-For": ip})
    found = re.search(r'data-csrf="([^"]+)"|name="csrf" value="([^"]+)"', await home.text())
    return found.group(1) or found.group(2), str(home.url.path)


def workbench_routes(app):
    return sorted({(r.method, r.resource.canonical) for r in app.router.routes()
                   if r.method in ("GET", "POST") and r.resource is not None and (
                       r.resource.canonical.startswith(("/support/traener", "/support/api/traener"))
                       or r.resource.canonical == "/support/assets/workbench.js")})


def concrete(path):
    return path.replace("{kind}", "form").replace("{item_id}", "koersel")


# ------------------------------------------------------------------------------ roles
def test_roles_come_from_the_supporters_file_and_default_to_supporter(tmp_path):
    path = tmp_path / "supporters.yml"
    support_auth.add_supporter(path, SOFIE, "Sofie Lund", SOFIE_PASSWORD)
    old = yaml.safe_load(path.read_text())
    del old["supporters"][0]["roles"]  # a file written before roles existed
    old["supporters"].append({"username": ANNA, "name": "Anna Berg", "password_hash": "scrypt$1$1$1$00$00",
                              "roles": ["trainer"]})
    path.write_text(yaml.safe_dump(old))
    people = support_auth.load_supporters(path)
    assert people[SOFIE].roles == ("supporter",) and people[ANNA].roles == ("trainer",)
    old["supporters"][1]["roles"] = ["admin"]
    path.write_text(yaml.safe_dump(old))
    with pytest.raises(support_auth.SupporterFileError, match="roles skal være"):
        support_auth.load_supporters(path)
    assert support_auth.parse_roles("trainer, supporter") == ("supporter", "trainer")
    with pytest.raises(support_auth.SupporterFileError):
        support_auth.parse_roles("chef")


def test_the_demo_trainer_exists_only_in_development(tmp_path):
    dev = load_settings({"AF_MODE": "development", "AF_SUPPORTERS_FILE": str(tmp_path / "none.yml")})
    assert support_auth.has_role(dev, DEV_TRAINER_USERNAME, "trainer")
    assert not support_auth.has_role(dev, DEV_TRAINER_USERNAME, "supporter")
    assert not support_auth.has_role(dev, DEV_SUPPORTER_USERNAME, "trainer")
    from tests.production_env import production_env

    prod = load_settings(production_env(AF_SUPPORTERS_FILE=str(tmp_path / "none.yml")))
    assert DEV_TRAINER_USERNAME not in support_auth.supporters(prod)


def test_the_cli_adds_a_trainer(tmp_path):
    path = tmp_path / "supporters.yml"
    env = {"PYTHONPATH": str(PROJECT_ROOT), "AF_MODE": "development", "AF_SUPPORTERS_FILE": str(path),
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "web.support", "add-supporter", "--username", ANNA, "--name",
                           "Anna Berg", "--roles", "trainer", "--password-stdin"], input=ANNA_PASSWORD + "\n",
                          capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([sys.executable, "-m", "web.support", "list-supporters"], capture_output=True, text=True,
                            env=env, cwd=PROJECT_ROOT, timeout=60)
    assert f"{ANNA}\tAnna Berg\ttrainer" in listed.stdout


# ------------------------------------------------------------------------------ doors
def test_every_workbench_route_refuses_clients_without_the_trainer_role(settings):
    async def scenario(client):
        routes = workbench_routes(client.server.app)
        anonymous = {}
        for method, path in routes:
            r = await client.request(method, concrete(path), allow_redirects=False, json={})
            anonymous[(method, path)] = (r.status, r.headers.get("Location"))
        csrf, home = await login(client, SOFIE, SOFIE_PASSWORD)
        supporter = {}
        for method, path in routes:
            r = await client.request(method, concrete(path), allow_redirects=False, json={},
                                     headers={"X-CSRF-Token": csrf})
            supporter[(method, path)] = (r.status, r.headers.get("Location"))
        return routes, anonymous, supporter, home

    routes, anonymous, supporter, home = run(settings, scenario)
    assert len(routes) >= 18
    assert home == "/support"
    for (method, path), (status, location) in anonymous.items():
        if method == "GET" and "/api/" not in path:
            assert (status, location) == (303, "/support/login"), path
        else:
            assert status == 401, (method, path, status)
    for (method, path), (status, location) in supporter.items():
        if method == "GET" and "/api/" not in path:
            assert (status, location) == (303, "/support"), path  # her own page
        else:
            assert status == 403, (method, path, status)


def test_a_trainer_uses_the_workbench_but_not_the_console_and_posts_need_csrf(settings):
    async def scenario(client):
        csrf, home = await login(client, ANNA, ANNA_PASSWORD)
        routes = workbench_routes(client.server.app)
        gets = {path: (await client.get(concrete(path), allow_redirects=False)).status
                for method, path in routes if method == "GET" and "review" not in path and "conversation" not in path}
        posts = {path: (await client.post(concrete(path), json={}, allow_redirects=False)).status
                 for method, path in routes if method == "POST"}
        forged = (await client.post("/support/api/traener/annotate", json={"kind": "ignore", "original": "x"},
                                    headers={"X-CSRF-Token": "forkert"})).status
        foreign = (await client.post("/support/api/traener/annotate", json={"kind": "ignore", "original": "x"},
                                     headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})).status
        queue = (await client.get("/support/api/queue")).status
        page = await client.get("/support/traener")
        return home, gets, posts, forged, foreign, queue, await page.text()

    home, gets, posts, forged, foreign, queue, page = run(settings, scenario)
    assert home == "/support/traener"  # a trainer-only login lands on the workbench
    assert set(gets.values()) == {200}, gets
    assert set(posts.values()) == {403}, posts  # no CSRF token
    assert forged == 403 and foreign == 403
    assert queue == 403  # the console's API needs the supporter role
    assert 'lang="da"' in page and "Træn AF-assistenten" in page and 'role="tablist"' in page
    assert "Chat-konsollen" not in page  # no link to a console she may not use


def test_a_person_with_both_roles_gets_both_pages_and_links(settings):
    async def scenario(client):
        await login(client, BO, BO_PASSWORD)
        console = await (await client.get("/support")).text()
        bench = await (await client.get("/support/traener")).text()
        return console, bench

    console, bench = run(settings, scenario)
    assert 'href="/support/traener"' in console and 'href="/support"' in bench


def test_removing_the_trainer_role_closes_the_workbench_at_the_next_request(settings):
    async def scenario(client):
        await login(client, BO, BO_PASSWORD)
        before = (await client.get("/support/api/traener/overview")).status
        people = support_auth.load_supporters(settings.supporters_file)
        bo = people[BO]
        people[BO] = support_auth.Supporter(bo.username, bo.name, bo.password_hash, ("supporter",))
        support_auth.write_supporters(settings.supporters_file, people.values())
        after = (await client.get("/support/api/traener/overview")).status
        still = (await client.get("/support/api/queue")).status
        return before, after, still

    assert run(settings, scenario) == (200, 403, 200)


# ------------------------------------------------------------------------------ annotate
def post(client, csrf, path, body):
    return client.post(path, json=body, headers={"X-CSRF-Token": csrf})


def test_annotating_messages_writes_examples_with_warnings_first_and_audits_it(settings, project_copy):
    async def scenario(client):
        csrf, _ = await login(client, ANNA, ANNA_PASSWORD)
        results = {}
        for name, body in {
            "intent": {"original": "hvad gør I egentlig for mig", "text": "hvad gør I egentlig for mig",
                       "kind": "intent", "target": "ask_capabilities"},
            "again": {"original": "Hvad gør I  egentlig for mig?", "text": "Hvad gør I  egentlig for mig?",
                      "kind": "intent", "target": "ask_capabilities"},
            "other": {"original": "omsorgsdage regler for medarbejder",
                      "text": "omsorgsdage regler for medarbejder", "kind": "intent", "target": "find_form"},
            "taken": {"original": "hvor mange omsorgsdage har en medarbejder",
                      "text": "hvor mange omsorgsdage har en medarbejder", "kind": "intent", "target": "find_form"},
            "form": {"original": "fri til begravelse 0102031234", "text": "fri til begravelse 0102031234",
                     "kind": "form", "target": "orlov", "confirm": True},
            "unknown": {"original": "x y z", "text": "x y z", "kind": "intent", "target": "find_from"},
            "ignore": {"original": "asdf qwerty", "kind": "ignore"},
            "note": {"original": "blanket til flyttedag", "text": "blanket til flyttedag", "kind": "note",
                     "note": "Der mangler en blanket til flyttedag."},
        }.items():
            r = await post(client, csrf, "/support/api/traener/annotate", body)
            results[name] = (r.status, await r.json())
        check = await post(client, csrf, "/support/api/traener/check",
                           {"text": "kilometerpenge i egen bil", "kind": "form", "target": "vikar"})
        confirmed = await post(client, csrf, "/support/api/traener/annotate",
                               {"original": "omsorgsdage regler for medarbejder",
                                "text": "omsorgsdage regler for medarbejder", "kind": "intent",
                                "target": "find_form", "confirm": True})
        audit = await (await client.get("/support/api/traener/audit")).json()
        return results, await check.json(), (confirmed.status, await confirmed.json()), audit

    results, check, confirmed, audit = run(settings, scenario)
    assert results["intent"][1]["status"] == "added"
    assert results["again"][1]["status"] == "exists"  # the same text after folding case and spacing
    assert results["other"][1]["status"] == "needs_confirmation"
    assert any("ligner mere eksemplerne på ask_question" in w for w in results["other"][1]["warnings"])
    assert confirmed[0] == 200 and confirmed[1]["status"] == "added"
    assert results["taken"][0] == 400 and "står allerede som eksempel på ask_question" in results["taken"][1]["error"]
    assert results["form"][1]["status"] == "added" and results["form"][1]["intent"] == "find_form"
    assert results["unknown"][0] == 400 and "find_from" in results["unknown"][1]["error"]
    assert results["ignore"][1]["status"] == "ignored" and results["note"][1]["status"] == "noted"
    assert any("finder ikke «Ansættelse af vikar" in w or "finder ikke «" in w for w in check["warnings"])

    examples = yaml.safe_load((project_copy / "data" / "nlu" / "fra-traenere.yml").read_text())
    by_intent = {item["intent"]: item["examples"] for item in examples["nlu"]}
    assert "- hvad gør I egentlig for mig\n" in by_intent["ask_capabilities"]
    assert "- fri til begravelse cpr-nummer\n" in by_intent["find_form"]  # the CPR number never reaches the data
    assert "- omsorgsdage regler for medarbejder\n" in by_intent["find_form"]
    assert "hvor mange omsorgsdage" not in by_intent["find_form"]  # one example, one intent
    notes = yaml.safe_load((project_copy / "review" / "oensker-til-kataloget.yml").read_text())
    assert notes[0]["oenske"] == "Der mangler en blanket til flyttedag." and notes[0]["af"] == ANNA
    decisions = (Path(settings.var_dir) / "traener" / "beslutninger.json").read_text()
    assert "begravelse" not in decisions and "asdf" not in decisions  # hashes, never the leaders' words
    lines = [(e["supporter"], e["action"], e["detail"]) for e in audit["entries"]]
    assert (ANNA, "annotate", "«hvad gør I egentlig for mig» som eksempel på intenten ask_capabilities "
                              "(vide, hvad assistenten kan)") in lines
    assert any(action == "annotate" and "sprang" in detail for _, action, detail in lines)
    assert audit["notes"][0]["besked"] == "blanket til flyttedag"


def test_two_trainers_annotating_at_once_lose_nothing(settings, project_copy):
    project = Project.for_settings(settings)
    texts = ["kørepenge til pædagogen", "hvor får jeg km-godtgørelse", "bilen blev brugt til tur med børnene",
             "regning for benzin på turen", "skema for kilometer til møde", "refusion af kørsel i privatbil",
             "parkeringsbøde på tjenestetur", "befordring mellem matrikler", "kørebog til sekretæren",
             "egen bil til kursus i Odense", "tankkvittering fra udflugten", "kørselsregnskab for oktober"]
    errors = []

    def add(text, user):
        try:
            result = annotate.annotate(project, original=text, text=text, kind="form", target="koersel",
                                       user=user, confirm=True)
            assert result["status"] == "added", result
        except Exception as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(text, ANNA if i % 2 else BO)) for i, text in enumerate(texts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    written = annotate.load_examples(project_copy / "data" / "nlu")
    assert all((text, "find_form") in written for text in texts)


# ------------------------------------------------------------------------------ edit
def test_editing_a_form_checks_it_shows_a_preview_and_refuses_a_stale_copy(settings, project_copy):
    forms = project_copy / "profiles" / "buf" / "forms.yml"
    before = forms.read_text()

    async def scenario(client):
        csrf, _ = await login(client, ANNA, ANNA_PASSWORD)
        loaded = await (await client.get("/support/api/traener/edit/form/koersel")).json()
        fields = {f["name"]: f["value"] for f in loaded["fields"]}
        bad = await post(client, csrf, "/support/api/traener/edit/form/koersel",
                         {"fields": {**fields, "area": "kantine"}, "hash": loaded["hash"]})
        empty = await post(client, csrf, "/support/api/traener/edit/form/koersel",
                           {"fields": {**fields, "title": "  "}, "hash": loaded["hash"]})
        link = await post(client, csrf, "/support/api/traener/edit/form/koersel",
                          {"fields": {**fields, "url": "javascript:alert(1)"}, "hash": loaded["hash"]})
        assert link.status == 400 and "Linket skal begynde" in (await link.json())["error"]
        preview = await post(client, csrf, "/support/api/traener/edit/form/koersel/preview",
                             {"fields": {**fields, "title": "Kørsel i egen bil"}})
        saved = await post(client, csrf, "/support/api/traener/edit/form/koersel",
                           {"fields": {**fields, "title": "Kørsel i egen bil", "words": fields["words"] + "\nkm-penge"},
                            "hash": loaded["hash"]})
        stale = await post(client, csrf, "/support/api/traener/edit/form/koersel",
                           {"fields": {**fields, "title": "Kørepenge"}, "hash": loaded["hash"]})
        audit = await (await client.get("/support/api/traener/audit")).json()
        return ((bad.status, await bad.json()), (empty.status, await empty.json()), await preview.json(),
                (saved.status, await saved.json()), (stale.status, await stale.json()), audit)

    bad, empty, preview, saved, stale, audit = run(settings, scenario)
    assert bad[0] == 400 and "area skal være en af" in bad[1]["error"]  # the assistant's own validator
    assert empty[0] == 400 and "skal udfyldes" in empty[1]["error"]
    assert "Kørsel i egen bil" in preview["messages"][0]["text"] and preview["changed"] == ["title"]
    assert saved[0] == 200 and saved[1]["changed"] == ["title", "words"]
    assert stale[0] == 409 and "En anden har gemt" in stale[1]["error"]
    after = forms.read_text()
    diff = [line for line in _diff(before, after) if line[:1] in "+-"]
    assert diff == ["-    title: Kørselsgodtgørelse", "+    title: Kørsel i egen bil", "+      - km-penge"]
    assert "# EKSEMPEL" in after.split("id: koersel")[1].split("- id:")[0]  # the untouched url keeps its comment
    assert any(e["action"] == "edit" and "koersel" in e["detail"] for e in audit["entries"])


def _diff(before, after):
    import difflib

    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if not line.startswith(("---", "+++", "@@"))]


def test_editing_a_rule_answer_and_a_response_follows_the_same_rules(settings, project_copy):
    project = Project.for_settings(settings)
    faq = editing.load(project, "faq", "omsorgsdage")
    with pytest.raises(Exception, match="findes ikke i forms.yml"):
        editing.save(project, "faq", "omsorgsdage", {"forms": "findes_ikke"}, faq["hash"])
    answer = next(f["value"] for f in faq["fields"] if f["name"] == "answer") + " Spørg AF, hvis du er i tvivl."
    shown = editing.preview(project, "faq", "omsorgsdage", {"answer": answer})
    assert "Spørg AF, hvis du er i tvivl." in shown["messages"][0]["text"]
    assert editing.save(project, "faq", "omsorgsdage", {"answer": answer}, faq["hash"])["changed"] == ["answer"]
    assert "Spørg AF, hvis du er i tvivl." in yaml.safe_load(
        (project_copy / "profiles" / "buf" / "faq.yml").read_text())["topics"][
        [t["id"] for t in yaml.safe_load((project_copy / "profiles" / "buf" / "faq.yml").read_text())["topics"]].index(
            "omsorgsdage")]["answer"]

    name = next(n for n, (_, variations) in project.responses().items()
                if any("{" in str(v.get("text", "")) for v in variations if isinstance(v, dict)))
    loaded = editing.load(project, "response", name)
    field = next(f for f in loaded["fields"] if "{" in f["value"])
    with pytest.raises(Exception, match="Du har fjernet"):
        editing.save(project, "response", name, {field["name"]: re.sub(r"{[^}]+}", "", field["value"])}, loaded["hash"])
    with pytest.raises(Exception, match="kender ikke"):
        editing.save(project, "response", name, {field["name"]: field["value"] + " {cpr}"}, loaded["hash"])
    saved = editing.save(project, "response", name, {field["name"]: field["value"] + " Venlig hilsen AF."},
                         loaded["hash"])
    assert saved["changed"] == [field["name"]]
    path = project.responses()[name][0]
    variations = yaml.safe_load(path.read_text())["responses"][name]
    assert any(str(v.get("text", "")).endswith("Venlig hilsen AF.") for v in variations)
    with pytest.raises(Conflict):
        editing.save(project, "response", name, {field["name"]: "Noget andet {x}"}, loaded["hash"])


# ------------------------------------------------------------------------------ review
def test_the_review_groups_masks_and_links_only_to_its_own_conversations(settings, project_copy):
    from tests.tracker_builder import Conv, write_store

    now = time.time()
    write_store(settings.tracker_db_path, [
        Conv("leder-1", now - 3600).fallback("hvem har lavet dig 010203-1234", "bot_challenge", 0.3),
        Conv("leder-2", now - 1800).fallback("Hvem har lavet dig?", "bot_challenge", 0.31),
        Conv("leder-3", now - 900).faq_answered("må man få fri til flytning", "omsorgsdage")
        .user("/deny", "deny", 1.0).action("action_faq_feedback").listen(),
        Conv("leder-4", now - 600).fallback("helt andet emne", "greet", 0.2),
    ])

    async def scenario(client):
        csrf, _ = await login(client, ANNA, ANNA_PASSWORD)
        review = await (await client.get("/support/api/traener/review?days=14")).json()
        ref = next(m["ref"] for g in review["groups"] for m in g["messages"] if "lavet dig" in m["text"])
        conversation = await (await client.get(f"/support/api/traener/conversation?ref={ref}")).json()
        forged = workbench.conversation_ref(load_settings({"AF_MODE": "development", "AF_WEB_SESSION_KEY": "x" * 40}),
                                            "leder-4", now)
        refused = (await client.get(f"/support/api/traener/conversation?ref={forged}")).status
        await post(client, csrf, "/support/api/traener/annotate", {"original": "helt andet emne", "kind": "ignore"})
        again = await (await client.get("/support/api/traener/review?days=14")).json()
        return review, conversation, refused, again

    review, conversation, refused, again = run(settings, scenario)
    texts = {m["text"]: m for g in review["groups"] for m in g["messages"]}
    assert "hvem har lavet dig [CPR-nummer fjernet]" in texts or any("CPR-nummer fjernet" in t for t in texts)
    assert not any("010203" in t for t in texts)
    lavet = next(g for g in review["groups"] if any("lavet dig" in m["text"] for m in g["messages"]))
    assert len(lavet["messages"]) == 2  # two spellings, one group
    assert all(m["reasons"] == ["fallback"] and m["predicted"] == "bot_challenge" for m in lavet["messages"])
    assert texts["må man få fri til flytning"]["reasons"] == ["not_helped"]
    assert '"sender"' not in json.dumps(review) and "leder-1" not in json.dumps(review)  # only signed references
    assert any(e["marked"] for e in conversation["entries"])
    assert not any("010203" in e["text"] for e in conversation["entries"])
    assert refused == 403
    decided = {m["text"]: m["decision"] for g in again["groups"] for m in g["messages"]}
    assert decided["helt andet emne"]["kind"] == "ignore" and decided["helt andet emne"]["by"] == ANNA


# ------------------------------------------------------------------------------ serving
def test_put_into_service_only_when_approved_or_with_a_reason_and_roll_back(settings, project_copy):
    models = project_copy / "models"
    for name in ("af-gammel.tar.gz", "af-ny.tar.gz"):
        (models / name).write_bytes(b"model")
    (models / "i-drift").write_text("af-gammel.tar.gz\n")
    (models / "kandidat.json").write_text(json.dumps({"model": "af-ny.tar.gz", "approved": False, "kind": "worse",
                                                      "verdict": "DÅRLIGERE"}))

    async def scenario(client):
        csrf, _ = await login(client, ANNA, ANNA_PASSWORD)
        refused = await post(client, csrf, "/support/api/traener/activate", {"reason": "fordi"})
        forced = await post(client, csrf, "/support/api/traener/activate",
                            {"reason": "Aftalt med udvikleren: testsættet er forældet"})
        state = await (await client.get("/support/api/traener/serving")).json()
        back = await post(client, csrf, "/support/api/traener/rollback", {"reason": "Lederne klagede"})
        after_back = serving.in_service(project_copy).name
        again = await post(client, csrf, "/support/api/traener/rollback", {})
        audit = await (await client.get("/support/api/traener/audit")).json()
        return ((refused.status, await refused.json()), (forced.status, await forced.json()), state,
                (back.status, after_back), again.status, audit)

    refused, forced, state, back, again, audit = run(settings, scenario)
    assert refused[0] == 409 and "begrundelse" in refused[1]["error"]
    assert forced[0] == 200 and state["in_service"] == "af-ny.tar.gz" and state["previous"] == "af-gammel.tar.gz"
    assert back == (200, "af-gammel.tar.gz")
    assert again == 200  # back and forth: the rolled-back model is the previous one now
    history = (models / "drift-historik.log").read_text()
    assert f"i drift: af-ny.tar.gz (før: af-gammel.tar.gz) af {ANNA}: Aftalt med udvikleren" in history
    assert f"rullet tilbage: af-gammel.tar.gz (før: af-ny.tar.gz) af {ANNA}: Lederne klagede" in history
    actions = [(e["action"], e["detail"]) for e in audit["entries"]]
    assert any(a == "activate" and "begrundelse: Aftalt med udvikleren" in d for a, d in actions)
    assert any(a == "rollback" for a, _ in actions)


def test_a_second_training_is_refused_while_one_runs(settings, monkeypatch):
    from trainer import jobs

    project = Project.for_settings(settings)
    project.var_dir.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        jobs.job_file(project).write_text(json.dumps({"id": "x", "state": "running", "pid": sleeper.pid,
                                                      "started_at": time.time(), "started_name": "Bo Both"}))
        with pytest.raises(jobs.Busy, match="Bo Both startede en træning"):
            jobs.start(project, ANNA, "Anna Berg")
    finally:
        sleeper.kill()
        sleeper.wait()
    jobs.job_file(project).write_text(json.dumps({"id": "x", "state": "running", "pid": sleeper.pid,
                                                  "started_at": time.time() - 60}))
    assert jobs.status(project)["state"] == "failed"  # the process is gone: said so, never "running" forever


def test_a_server_without_rasa_says_where_to_train_and_starts_nothing(settings, tmp_path):
    """The app image (Python 3.12) has no Rasa: the trainer is told so, in Danish, and no job starts."""
    from trainer import jobs

    project = Project.for_settings(settings)
    python = tmp_path / "bin" / "python3"
    python.parent.mkdir()
    python.symlink_to(sys.executable)  # a Python, but no `rasa` beside it
    without = Project(project.root, project.profile_dir, project.var_dir, str(python), project.eval_sets, False)
    assert jobs.can_train(project) and not jobs.can_train(without)
    with pytest.raises(TrainerError, match="serveren har ikke Rasa"):
        jobs.start(without, ANNA, "Anna Berg")
    assert not jobs.job_file(without).exists()


def test_the_sealed_evaluation_batches_are_never_used(settings):
    from trainer import evaluation
    from trainer.files import TrainerError

    project = Project.for_settings(settings)
    sealed = Project(project.root, project.profile_dir, project.var_dir, project.python,
                     ("tests/eval/blind-c.yml",), False)
    with pytest.raises(TrainerError, match="forseglet"):
        evaluation.load_items(sealed)
    assert not set(load_settings({"AF_MODE": "development"}).trainer_eval_sets) & set(evaluation.SEALED)


def test_an_image_without_the_trainer_code_still_serves_the_console(settings, monkeypatch):
    import importlib

    monkeypatch.setitem(sys.modules, "trainer", None)  # as in the app image, which has no trainer/
    for name in [n for n in sys.modules if n.startswith("trainer.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "web.workbench")
    assert importlib.import_module("web.workbench").MISSING == "trainer"

    async def scenario(client):
        _, home = await login(client, ANNA, ANNA_PASSWORD)
        page = await client.get("/support/traener")
        api = (await client.get("/support/api/traener/overview")).status
        return home, page.status, await page.text(), api

    home, status, text, api = run(settings, scenario)
    assert (home, status, api) == ("/support/traener", 503, 404)
    assert "kører ikke på denne server" in text


def test_the_comparison_judges_answers_as_the_leader_evaluation_does_and_lists_what_changed():
    from trainer import evaluation

    said = {"got": "faq:ferie", "forms": ["ferie"], "faq": "ferie", "intent": "ask_question"}
    assert evaluation.judge("faq:ferie", said) == {"ok": True, "predicted": "faq:ferie"}
    assert evaluation.judge("form:ferie", said)["ok"]  # a rule answer that links the form shows the form
    assert evaluation.judge("form:vikar", said) == {"ok": False, "predicted": "form:ferie"}
    assert evaluation.judge("intent:deny", {**said, "intent": "deny"})["ok"]  # ja/nej: the intent counts
    assert evaluation.judge("intent:case_status", {**said, "got": "intent:case_status"})["ok"]

    def figures(rows):
        per = {"form:vikar": {"f1": 1.0 if rows[0][1] else 0.0, "support": 1}}
        return {"intents": {"per_intent": per}, "sets": {"s": {"n": 2, "right": sum(ok for _, ok in rows)}},
                "predictions": [{"set": "s", "text": t, "expected": "form:vikar",
                                 "predicted": "form:vikar" if ok else "fallback"} for t, ok in rows]}

    diff = evaluation.differences(figures([("a", True), ("b", False)]), figures([("a", False), ("b", True)]))
    assert [r["text"] for r in diff["better"]] == ["a"] and [r["text"] for r in diff["worse"]] == ["b"]
    assert diff["sets"] == [{"set": "s", "n": 2, "new_right": 1, "old_right": 1}]
    assert diff["labels"][0]["change"] == 1.0
    first = evaluation.differences(figures([("a", True)]), None)
    assert first["better"] == [] and first["labels"][0]["old_f1"] is None


def test_the_trainers_entries_stay_out_of_the_supporters_hand_over_log(settings):
    async def scenario(client):
        csrf, _ = await login(client, BO, BO_PASSWORD)
        await post(client, csrf, "/support/api/traener/annotate", {"original": "noget sludder", "kind": "ignore"})
        console = await (await client.get("/support/api/audit")).json()
        bench = await (await client.get("/support/api/traener/audit")).json()
        return console, bench

    console, bench = run(settings, scenario)
    assert [e["action"] for e in bench["entries"]] == ["annotate"]
    assert "login" in [e["action"] for e in console["entries"]]
    assert not any(e["action"].startswith("traener_") for e in console["entries"])


def test_a_rule_topic_is_checked_against_the_rule_catalogue(settings):
    project = Project.for_settings(settings)
    text = "hvor mange dage fri med løn når barnet er sygt"
    right = annotate.check(project, text, "faq", "omsorgsdage")
    assert right["intent"] == "ask_question" and right["warnings"] == []
    wrong = annotate.check(project, text, "faq", "ferieloven")
    assert any("finder ikke «Ferieloven" in w and "finder «Omsorgsdage»" in w for w in wrong["warnings"])


def test_a_trainer_in_the_workbench_is_not_a_supporter_on_duty(settings):
    """Leaders are queued for a person only when a supporter is present: a trainer who only uses
    the workbench must not count, or a leader would wait for nobody."""
    from af_core.handoff_store import duty_status, get_store
    from af_core.profile import load_profile

    profile = load_profile(settings.profile_dir)

    async def trainer(client):
        await login(client, ANNA, ANNA_PASSWORD)  # trainer only
        await client.get("/support/traener")
        return duty_status(settings, profile, get_store(settings))

    async def supporter(client):
        await login(client, SOFIE, SOFIE_PASSWORD, ip="10.20.0.2")
        await client.get("/support")
        return duty_status(settings, profile, get_store(settings))

    alone = run(settings, trainer)
    with_supporter = run(settings, supporter)
    assert (alone.on_duty, alone.reason) == (False, "nobody")
    assert with_supporter.on_duty and with_supporter.present == (SOFIE,)
