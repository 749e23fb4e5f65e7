"""Every sentence a leader reads is a domain response, and a trainer's change in YAML is what the
leader sees.

1. An AST scan of actions/*.py fails when an action passes a sentence of its own: ``utter_message``
   with ``text=`` (or a positional text), a Danish literal as a response variable or a button
   label, a ``"text"``/``"title"`` with a Danish literal in a planned message, or a module constant
   or a ``return`` that is a Danish sentence. Catalogue data (a form's title, an FAQ answer) comes
   from profiles/ as attributes, never as literals, so it passes; the few exceptions are listed in
   ``ALLOWED`` with the reason.
2. Every response name an action uses exists in domain/*.yml, and every ``{variable}`` of it is
   filled: by a slot, or by the values the action passes.
3. A trainer changes a sentence in domain/*.yml and the leader reads the new sentence; the
   variables (``{number}``) are still filled in.
"""
from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from af_core.responses import placeholders, render
from tests import response_paths
from tests.domain_helpers import DOMAIN, ROOT, load_domain, variation

ACTIONS = ROOT / "actions"
# The actions and the core modules they speak through (the reply plans, the request dialogue),
# and what speaks to the leader outside an action: the channels and the web server's hand-over.
MODULES = (sorted(ACTIONS.glob("*.py")) + sorted((ROOT / "af_core").glob("*.py"))
           + sorted((ROOT / "channels").glob("*.py")) + [ROOT / "web" / "handoff_flow.py"])

# Modules that never speak to a leader: they are not scanned (their strings are log lines, errors
# for operators and trainers, SQL, ServiceNow fields, grammar word lists). A new module is scanned.
NOT_DIALOGUE = {
    "__init__.py", "settings.py", "identity.py", "db.py", "handoff_store.py", "outbox.py", "servicenow_client.py",
    "logsetup.py", "privacy.py", "textnorm.py", "catalogue_search.py", "af_calendar.py", "rasa_http.py",
    "intent_shapes.py",  # NLU sentence shapes (regular expressions), no replies
    "request_vocabulary.py",  # matches the profile's vocabulary; grammar words only
    # ServiceNow's own field values (state labels, a case's short description) are data the
    # leader sees in a case's line; they belong to the ServiceNow integration, not to the dialogue.
    "case_service.py",
    "textsim.py",  # text similarity for the trainer's tools
    "transcript.py",  # the console's transcript labels (supporters read them, web/support.py)
    "conversation.py",  # channels/: reads the stored conversation; log lines only
}
# (module, function or "*") -> why Danish text may stand there.
ALLOWED: Dict[Tuple[str, str], str] = {
    # Danish dates and times as data ("torsdag den 3. december kl. 10.00", "efter aftale"): the
    # time parser's own rendering of a value, used as a {variable} of responses.
    ("danish_time.py", "*"): "renders dates and times (weekday and month names) as data",
}
# Keywords of utter_message that carry text of their own instead of a response.
TEXT_KEYWORDS = {"text", "json_message", "image", "attachment", "elements", "template"}
_LETTERS = re.compile(r"[A-Za-zÆØÅæøåé]{2,}")
_RESPONSE_NAME = re.compile(r"^utter_\w+$")


def _words(text: str) -> List[str]:
    """The words of a literal that a person would read (not identifiers, payloads, placeholders)."""
    text = text.strip()
    if text.startswith("/") or _RESPONSE_NAME.match(text):
        return []
    return [t for t in text.split()
            if _LETTERS.search(t) and "_" not in t and not t.startswith("{") and not t.isupper()]  # not "AFH"


def _literal_text(node: ast.AST, strict: bool = False) -> Optional[str]:
    """The readable text in an expression built from literals (a string, an f-string's own
    words, a concatenation), or None. ``strict``: a plain string counts only with two words or
    more (a module constant like "forms.yml" or a name like "action_x" is no sentence)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        words = _words(node.value)
        return node.value if len(words) >= (2 if strict else 1) else None
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        return text if _words(text) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _literal_text(node.left, strict) or _literal_text(node.right, strict)
    if isinstance(node, ast.IfExp):
        return _literal_text(node.body, strict) or _literal_text(node.orelse, strict)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return _literal_text(node.func.value, strict)
    return None


_FUNCTION = (ast.FunctionDef, ast.AsyncFunctionDef)


def _functions(tree: ast.AST) -> Iterator[Tuple[str, ast.AST]]:
    yield "<module>", tree
    for node in ast.walk(tree):
        if isinstance(node, _FUNCTION):
            yield node.name, node


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function (or of the module) without those of the functions inside it."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        if isinstance(node, _FUNCTION):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _assignments(function: ast.AST) -> Dict[str, List[ast.AST]]:
    """Names assigned in ``function`` (not in nested functions) -> the values assigned."""
    found: Dict[str, List[ast.AST]] = {}
    for node in _own_nodes(function):
        targets: List[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name):
                found.setdefault(target.id, []).append(value)
    return found


def literal_sentences(path: Path) -> List[str]:
    """Where ``path`` passes a sentence of its own to the leader (empty: none)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems: List[str] = []

    def allowed(function: str) -> bool:
        return (path.name, "*") in ALLOWED or (path.name, function) in ALLOWED

    for function, node in _functions(tree):
        if allowed(function):
            continue
        assigned = _assignments(node)

        def danish(value: ast.AST, depth: int = 0) -> Optional[str]:
            text = _literal_text(value)
            if text is None and isinstance(value, ast.Name) and depth < 3:
                for source in assigned.get(value.id, []):
                    text = text or danish(source, depth + 1)
            return text

        def report(where: ast.AST, what: str, text: str) -> None:
            problems.append(f"{path.name}:{where.lineno} ({function}): {what}: {text!r}")

        for child in _own_nodes(node):
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr == "utter_message":
                if child.args:
                    report(child, "utter_message with a positional text", ast.unparse(child.args[0]))
                for keyword in child.keywords:
                    if keyword.arg in TEXT_KEYWORDS:
                        report(child, f"utter_message({keyword.arg}=...) instead of response=", ast.unparse(keyword.value))
                    elif keyword.arg is not None and keyword.arg != "response":
                        text = danish(keyword.value)
                        if text:
                            report(child, f"a Danish literal as the variable {keyword.arg}", text)
            elif isinstance(child, ast.Dict):
                for key, value in zip(child.keys, child.values):
                    if isinstance(key, ast.Constant) and key.value in ("text", "title"):
                        text = danish(value)
                        if text:
                            report(child, f"a Danish literal as a message's {key.value!r}", text)
            elif isinstance(child, ast.Return) and child.value is not None and function != "<module>":
                text = _literal_text(child.value, strict=True)
                if text:
                    report(child, "returns a Danish sentence", text)
        if function == "<module>":
            for statement in tree.body:
                if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
                    text = _literal_text(statement.value, strict=True)
                    if text:
                        report(statement, "a Danish sentence as a module constant", text)
    return problems


@pytest.mark.parametrize("path", [p for p in MODULES if p.name not in NOT_DIALOGUE], ids=lambda p: p.name)
def test_no_action_passes_a_sentence_of_its_own(path):
    assert literal_sentences(path) == []


def test_the_modules_left_out_of_the_scan_exist():
    assert NOT_DIALOGUE <= {p.name for p in MODULES}


@pytest.mark.parametrize("source, expected", [
    ('dispatcher.utter_message(text="Hej med dig")', "utter_message(text=...)"),
    ('dispatcher.utter_message("Hej med dig")', "positional text"),
    ('def f(d):\n    d.utter_message(text=form.when)', "utter_message(text=...)"),
    ('def f(d, n):\n    d.utter_message(response="utter_x", name=f"kære {n}")', "variable name"),
    ('def f(d, n):\n    why = "Der er ingen her."\n    d.utter_message(response="utter_x", why=why)', "variable why"),
    ('def f(n):\n    return {"title": "Bestil hjælp", "payload": "/request_help"}', "message's 'title'"),
    ('def f(n):\n    return {"text": "Jeg forstod " + n}', "message's 'text'"),
    ('def f(n):\n    return f"{n} minutter"', "returns a Danish sentence"),
    ('PROMPT = ("Skriv dit spørgsmål "\n          "med egne ord.")', "module constant"),
])
def test_the_scan_finds_each_way_of_passing_a_sentence(tmp_path, source, expected):
    path = tmp_path / "action_x.py"
    path.write_text(source, encoding="utf-8")
    problems = literal_sentences(path)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("source", [
    'def f(d, form):\n    d.utter_message(response="utter_form", form_title=form.title, form_url=form.url)',
    'def f(d, p):\n    d.utter_message(response="utter_x", af_phone=p.phone, buttons=[{"title": t, "payload": "/x"}])',
    'def f(n):\n    return f\'/rate{{"rating": "{n}"}}\'',
    'log.warning("Bestilling uden verificeret identitet blev ikke sendt")',
    'def f():\n    raise ValueError("profil.yml mangler feltet phone")',
    'def f(lines):\n    return "\\n".join(lines)',
])
def test_the_scan_lets_data_logs_and_trainer_errors_pass(tmp_path, source):
    path = tmp_path / "action_y.py"
    path.write_text(source, encoding="utf-8")
    assert literal_sentences(path) == []


# ---------------------------------------------------------------------------------------------
# 2. Every response an action uses exists, with the variables it needs
# ---------------------------------------------------------------------------------------------
def _slots(domain) -> Set[str]:
    return set(domain["slots"]) | {"requested_slot", "session_started_metadata"}


# Strings shaped like a response name that are Rasa's own keys.
RASA_KEYS = {"utter_action"}  # the metadata key naming the response a bot event says


def _literal_response_names() -> Dict[str, List[str]]:
    """Response names written in the scanned modules -> where."""
    names: Dict[str, List[str]] = {}
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_fstrings = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            if id(node) in in_fstrings:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _RESPONSE_NAME.match(node.value) \
                    and node.value not in RASA_KEYS:
                names.setdefault(node.value, []).append(f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.JoinedStr) and isinstance(node.values[0], ast.Constant) \
                    and str(node.values[0].value).startswith("utter_"):
                names.setdefault(str(node.values[0].value) + "*", []).append(f"{path.name}:{node.lineno}")
    return names


def test_every_response_name_in_the_actions_is_in_the_domain():
    responses = set(DOMAIN["responses"])
    missing = {}
    for name, where in _literal_response_names().items():
        if name.endswith("*"):  # f"utter_time_{problem}", f"utter_button_rating_{n}": some must exist
            ok = any(r.startswith(name[:-1]) for r in responses)
        else:
            ok = name in responses
        if not ok:
            missing[name] = where
    assert missing == {}


def test_every_message_an_action_sends_is_a_response_with_the_variables_it_needs():
    """Every situation of every action (tests/response_paths.py), run with fakes: each message is
    a domain response, and each of its {variables} is a slot or a value the action passed."""
    slots = _slots(DOMAIN)
    problems = []
    seen = set()
    for name, passed in response_paths.collect():
        seen.add(name)
        if name == "<text>":
            problems.append("a message with text of its own")
            continue
        for variation in DOMAIN["responses"][name]:
            needed = set(placeholders(variation.get("text") or ""))
            for button in variation.get("buttons") or []:
                needed |= set(placeholders(button.get("title") or "")) | set(placeholders(button.get("payload") or ""))
            unfilled = needed - passed - slots
            if unfilled:
                problems.append(f"{name}: {sorted(unfilled)} (the action passes {sorted(passed)})")
    assert problems == []
    # Each response in the domain is said by a rule, a story, an action (seen above) or filled in as a part.
    parts = {name for name, _ in response_paths.rendered_parts()}
    in_data = set()
    for path in list((ROOT / "data").rglob("*.yml")) + list((ROOT / "tests" / "stories").glob("*.yml")):
        in_data |= set(re.findall(r"\butter_\w+", path.read_text(encoding="utf-8")))
    form_questions = {f"utter_ask_{slot}" for slot in DOMAIN["slots"]} | {
        f"utter_ask_{form}_{slot}" for form, spec in DOMAIN["forms"].items() for slot in spec["required_slots"]}
    # Said by Rasa's own actions (action_default_fallback, action_restart), or the main menu's
    # definition whose buttons af_core/menu.py reads.
    rasa_and_menu = {"utter_default", "utter_restart", "utter_main_menu"}
    outside = {name for names in _outside_actions().values() for name in names}  # channels, hand-over
    unused = set(DOMAIN["responses"]) - seen - parts - in_data - form_questions - rasa_and_menu - outside
    assert unused == set(), "responses no action, rule or story uses (or the paths miss them)"


def test_every_part_an_action_fills_itself_has_all_its_variables():
    """Parts (a case line, a summary line, a button label) are filled by the action itself:
    a variable the action does not pass would stay as {x} in what the leader reads."""
    problems = []
    for name, passed in response_paths.rendered_parts():
        for variation in DOMAIN["responses"][name]:
            missing = set(placeholders(variation.get("text") or "")) - passed
            if missing:
                problems.append(f"{name}: {sorted(missing)}")
    assert problems == []


def test_variables_in_the_domain_are_written_the_way_rasa_reads_them():
    """A trainer's typo ("{ number}", "{number") would show to the leader as it is."""
    for name, variations in DOMAIN["responses"].items():
        for variation in variations:
            text = variation.get("text") or ""
            assert text.count("{") == text.count("}"), name
            for placeholder in placeholders(text):
                assert re.fullmatch(r"[a-z_]+", placeholder), (name, placeholder)


# ---------------------------------------------------------------------------------------------
# 3. A trainer changes a sentence in YAML, and the leader reads it
# ---------------------------------------------------------------------------------------------
def test_a_trainer_changes_a_sentence_in_yaml_and_the_leader_reads_the_new_one(tmp_path, monkeypatch):
    import shutil

    from actions import case_status as cs
    from af_core.profile import load_profile
    from tests.test_case_status import METTE, FakeCases

    folder = tmp_path / "domain"
    shutil.copytree(ROOT / "domain", folder)
    path = folder / "requests.yml"
    text = path.read_text(encoding="utf-8")
    old = '"Her er din sag:\\n{case}"'
    assert old in text
    path.write_text(text.replace(old, '"Sådan står det til med sagen:\\n{case}"'), encoding="utf-8")
    edited = load_domain(folder)

    profile = load_profile(ROOT / "profiles" / "buf")
    monkeypatch.setattr(cs, "get_profile", lambda: profile)
    fake = FakeCases()
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    event = {"event": "user", "text": "status på AFH0001003",
             "parse_data": {"intent": {"name": "case_status"}, "entities": []}}
    tracker = Tracker("leder-1", {"leader_email": METTE}, event["parse_data"], [event], False, None, {},
                      "action_listen")
    dispatcher = CollectingDispatcher()
    asyncio.run(cs.ActionCaseStatus().run(dispatcher, tracker, edited))
    message = dispatcher.messages[0]
    assert message["response"] == "utter_case_shown"
    read = variation("utter_case_shown", domain=edited)
    leader_reads = render({"responses": {"x": [read]}}, "x", case=message["case"])
    assert leader_reads.startswith("Sådan står det til med sagen:\n• AFH0001003 – ")
    assert "{" not in leader_reads


def _outside_actions() -> Dict[str, Tuple[str, ...]]:
    from channels import inbound, rest_channel, socketio_channel
    from web import handoff_flow, leader_page

    return {"channels.inbound": inbound.RESPONSES, "channels.rest_channel": rest_channel.RESPONSES,
            "channels.socketio_channel": socketio_channel.RESPONSES, "web.handoff_flow": handoff_flow.RESPONSES,
            "web.leader_page (the chat window)": tuple(leader_page.WIDGET_TEXTS.values())}


def test_every_sentence_sent_outside_an_action_is_a_response_in_the_domain():
    """The channels' refusals and notices and the hand-over's messages (af_core.domain_texts)."""
    missing = {module: [n for n in names if n not in DOMAIN["responses"]]
               for module, names in _outside_actions().items()}
    assert {m: n for m, n in missing.items() if n} == {}
    for names in _outside_actions().values():
        for name in names:
            assert "{" not in render(DOMAIN, name, count=2, limit="2.000", supporter="Sofie fra AF", first_name="Sofie",
                                     reference="AFH0001001", promise="", phone="33 66 33 66"), name


def test_a_trainer_changes_a_channel_sentence_and_the_leader_reads_it_without_a_restart(tmp_path, monkeypatch):
    import shutil

    from af_core import domain_texts
    from af_core.settings import load_settings
    from channels import inbound

    folder = tmp_path / "domain"
    shutil.copytree(ROOT / "domain", folder)
    monkeypatch.setattr(domain_texts, "DOMAIN_DIR", folder)
    settings = load_settings({"AF_MODE": "development", "AF_IDENTITY_REQUIRED": "true"})
    refused = inbound.prepare("hej", {}, settings)
    assert refused.refusal == inbound.REFUSAL_MISSING
    assert inbound.say(refused.refusal).startswith("Jeg kan ikke se, hvem du er")
    path = folder / "channel.yml"
    text = path.read_text(encoding="utf-8")
    old = '"Jeg kan ikke se, hvem du er, så jeg kan ikke hjælpe dig her.'
    assert old in text
    path.write_text(text.replace(old, '"Du er ikke logget ind.'), encoding="utf-8")
    assert inbound.say(refused.refusal).startswith("Du er ikke logget ind. Åbn chatten fra AF's side")
    # variables are still filled in
    path.write_text(path.read_text(encoding="utf-8").replace(
        "Jeg har fjernet {count} CPR-numre fra din besked.", "{count} CPR-numre er fjernet."), encoding="utf-8")
    notice = inbound.prepare("0102031234 og 0203041234", {}, load_settings({"AF_MODE": "development"})).notices
    assert notice[0].startswith("2 CPR-numre er fjernet.")


def test_the_hand_over_names_the_response_it_says():
    from af_core import domain_texts
    from web import handoff_flow

    event = domain_texts.bot_event(handoff_flow.TIMEOUT_NEW_CASE, reference="AFH0001001", promise=" i dag")
    assert event["metadata"] == {"utter_action": "utter_handoff_timeout_new_case"}
    assert "(AFH0001001), så en medarbejder kontakter dig i dag." in event["text"]
    assert [b["payload"] for b in event["data"]["buttons"]] == ["/book_meeting", "/find_form"]


def test_the_domain_files_are_valid_yaml_with_text_in_every_response():
    for path in sorted((ROOT / "domain").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, variations in (data.get("responses") or {}).items():
            assert name.startswith("utter_"), (path.name, name)
            assert variations and all(str(v.get("text") or "").strip() for v in variations), (path.name, name)


def test_rasa_itself_fills_the_responses_as_the_tests_read_them():
    """The messages of every situation, through Rasa's own code for an action's responses
    (RemoteAction._utter_responses with the templated NLG of domain/): the leader reads exactly
    what ``tests.domain_helpers.shown`` says, with the buttons of the response and the action."""
    import copy

    pytest.importorskip("rasa")
    from rasa.core.actions.action import RemoteAction
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    from tests.domain_helpers import shown, shown_buttons

    domain = Domain.load(str(ROOT / "domain"))
    slots = {"af_phone": "33 17 00 00", "af_phone_hours": "mandag-torsdag kl. 8-15",
             "forms_page_url": "https://kkintra.kk.dk/buf/af/blanketter"}
    tracker = DialogueStateTracker.from_events("leder-1", [SlotSet(k, v) for k, v in slots.items()],
                                               slots=domain.slots)
    messages = [m for name, m in response_paths.messages()]
    uttered = asyncio.run(RemoteAction._utter_responses(
        copy.deepcopy(messages), CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(domain.responses),
        tracker))
    assert len(uttered) == len(messages)
    for message, bot in zip(messages, uttered):
        assert bot.text == shown(message, slots), message["response"]
        assert "{" not in bot.text, message["response"]
        buttons = [(b["title"], b["payload"]) for b in bot.data.get("buttons") or []]
        assert buttons == [(b["title"], b["payload"]) for b in shown_buttons(message, slots)], message["response"]


def test_the_main_menu_is_read_from_its_one_definition(tmp_path, monkeypatch):
    from af_core import domain_texts, menu

    buttons = DOMAIN["responses"]["utter_main_menu"][0]["buttons"]
    assert menu.main_menu(DOMAIN) == buttons == menu.main_menu()  # the domain Rasa sends, or the file
    assert menu.MENU_WITHOUT_PERSON == [b for b in buttons if b["payload"] != "/human_handoff"]
    for name in ("utter_greet", "utter_capabilities", "utter_ask_rephrase", "utter_out_of_scope",
                 "utter_welcome_back", "utter_welcome_back_anonymous"):
        assert all(v["buttons"] == buttons for v in DOMAIN["responses"][name]), name
    # a trainer renames a button: every menu, the web server's included, follows
    folder = tmp_path / "domain"
    folder.mkdir()
    text = (ROOT / "domain" / "basics.yml").read_text(encoding="utf-8")
    (folder / "basics.yml").write_text(text.replace('"Find en blanket"', '"Find blanketten"', 1), encoding="utf-8")
    monkeypatch.setattr(domain_texts, "DOMAIN_DIR", folder)
    assert menu.main_menu()[0]["title"] == "Find blanketten"
    edited = load_domain(folder)
    assert all(v["buttons"][0]["title"] == "Find blanketten" for v in edited["responses"]["utter_greet"])
    # an image without domain/: no menu buttons, but no crash
    monkeypatch.setattr(domain_texts, "DOMAIN_DIR", tmp_path / "missing")
    assert menu.main_menu() == []
