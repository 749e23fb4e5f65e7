"""Finding the right form: catalogue, Danish matching, and what the leader sees in the chat."""
from __future__ import annotations

import shutil

import pytest
import yaml

from actions.forms_lookup import ActionFindForm
from af_core import form_replies, textnorm
from af_core.catalogue import load_form_catalogue, search_forms
from af_core.form_replies import plan_form_reply
from af_core.profile import ProfileError, get_profile, load_profile
from tests.domain_helpers import plan_shown, shown, shown_buttons
from tests.knowledge_helpers import run_action, slot_events, story_turns

REQUIRED_IDS = {
    "ansaettelse", "vikar", "fratraedelse", "loenaendring", "merarbejde", "timeaendring", "barsel",
    "orlov", "sygdom", "udlaeg", "koersel", "indkoeb", "kreditor", "systemadgang", "ferie",
    "seniordage", "tidsregistrering", "jubilaeum",
}


@pytest.fixture(scope="module")
def profile():
    return get_profile()


@pytest.fixture(scope="module")
def catalogue(profile):
    return load_form_catalogue(profile)


# ---------------------------------------------------------------- the catalogue


def test_catalogue_has_every_required_form_with_usable_fields(catalogue, profile):
    ids = {form.id for form in catalogue.forms}
    assert REQUIRED_IDS <= ids
    for form in catalogue.forms:
        assert form.url.startswith(profile.intranet_base_url + "/"), form.id
        assert "{intranet}" not in form.url
        assert form.area in profile.topics
        assert form.when.endswith(".") and len(form.when.split(".")) <= 3, form.id
        assert len(form.words) >= 8, f"{form.id}: for få ord at finde blanketten på"


@pytest.mark.parametrize("form_id", sorted(REQUIRED_IDS))
def test_every_form_is_found_by_its_own_title(catalogue, form_id):
    form = catalogue.get(form_id)
    decision = search_forms(form.title)
    assert decision.best is not None and decision.best.id == form_id


# ---------------------------------------------------------------- Danish matching


def test_fold_and_skeleton_make_all_spellings_meet():
    assert textnorm.fold("Kørselsgodtgørelse ÅR Æble") == "koerselsgodtgoerelse aar aeble"
    assert textnorm.terms("kørsel") == textnorm.terms("koersel") == textnorm.terms("korsel")
    assert textnorm.terms("lønnen") == textnorm.terms("loennen") == textnorm.terms("lonnen")
    assert textnorm.terms("§ 56") == textnorm.terms("paragraf 56")
    assert textnorm.terms("udbetaling") == textnorm.terms("udbetalt")
    assert textnorm.terms("hvornår skal jeg") == []  # only function words


def test_matcher_handles_compounds_and_typos():
    matcher = textnorm.TermMatcher(textnorm.terms("vikar barsel orlov kørselsgodtgørelse løn forhøjelse"))
    found = dict(matcher.matches(textnorm.terms("vikartimer")[0]))
    assert "vikar" in found  # compound head
    found = dict(matcher.matches(textnorm.terms("barselsorlov")[0]))
    assert {"barsel", "orlov"} <= set(found)  # both parts
    found = dict(matcher.matches(textnorm.terms("kørsel")[0]))
    assert textnorm.terms("kørselsgodtgørelse")[0] in found  # part of a catalogue compound
    found = dict(matcher.matches(textnorm.terms("barsl")[0]))
    assert "barsel" in found and found["barsel"] < 1.0  # typo, counted less
    assert matcher.matches(textnorm.terms("kantine")[0]) == ()


def test_edit_distance_counts_swaps_as_one():
    assert textnorm.edit_distance("vikar", "vikra") == 1
    assert textnorm.edit_distance("barsel", "barsl") == 1
    assert textnorm.edit_distance("abc", "xyzxyz", limit=2) == 3


# Tricky questions (none of them in the catalogue, the NLU data or the held-out set).
TRICKY = [
    ("pædagogen gaar paa efterlon i marts", "fratraedelse"),
    ("vi skal fyre en medhjælper", "fratraedelse"),
    ("ny kontrakt til fastansat lærer", "ansaettelse"),
    ("barselsvikar til 1. oktober", "vikar"),
    ("vikartimer til SFO", "vikar"),
    ("timelonnet afloser", "vikar"),
    ("forhøjelse af lønnen for en TR", "loenaendring"),
    ("lonforhojelse", "loenaendring"),
    ("overarbjede", "merarbejde"),
    ("fra fuldtid til deltid", "timeaendring"),
    ("gravid medarbjder", "barsel"),
    ("fædreorlov til en KKFO-pædagog", "barsel"),
    ("tjenstefri", "orlov"),
    ("sygdagpengerefusion", "sygdom"),
    ("§56", "sygdom"),
    ("har lagt ud med mit private kort", "udlaeg"),
    ("kilometerpenge for tjenestekørsel", "koersel"),
    ("rekvirere nye stole", "indkoeb"),
    ("oprette et firma som kreditor", "kreditor"),
    ("kan ikke logge ind i aula", "systemadgang"),
    ("restferie udbetales", "ferie"),
    ("seniordag", "seniordage"),
    ("glemt at stemple", "tidsregistrering"),
    ("40 års jubilæum", "jubilaeum"),
]


@pytest.mark.parametrize("text,form_id", TRICKY)
def test_tricky_questions_find_the_right_form_first(text, form_id):
    decision = search_forms(text)
    assert decision.best is not None, text
    assert decision.best.id == form_id, (text, decision)


@pytest.mark.parametrize("story,text,form_id", story_turns("action_find_form", "form_id"))
def test_test_story_texts_get_the_form_the_story_expects(profile, story, text, form_id):
    """tests/stories/test_knowledge.yml checks the dialogue; this checks the form it finds."""
    messages, events = run_action(ActionFindForm(), text, "find_form")
    assert slot_events(events)["form_id"] == form_id, (story, text, messages)


def test_stories_cover_every_form():
    covered = {form_id for _, _, form_id in story_turns("action_find_form", "form_id")}
    assert REQUIRED_IDS <= covered


# ---------------------------------------------------------------- the chat replies


def test_clear_question_gets_title_when_line_and_link(catalogue):
    messages, events = run_action(ActionFindForm(), "min pædagog går på efterløn, hvad gør jeg", "find_form")
    form = catalogue.get("fratraedelse")
    assert len(messages) == 1
    assert messages[0]["response"] == "utter_form"
    text = shown(messages[0])
    assert text == f"Du skal bruge blanketten «{form.title}».\n{form.when}\nHer er den: {form.url}"
    assert slot_events(events)["form_id"] == "fratraedelse"


def test_unsure_question_offers_up_to_three_forms_as_buttons(catalogue):
    # "ferie" alone could be the holiday form or, via "feriepenge"/"feriedage", several; "løn" is vaguer still.
    messages, events = run_action(ActionFindForm(), "noget med løn", "find_form")
    assert len(messages) == 1
    buttons = shown_buttons(messages[0])
    form_buttons = [b for b in buttons if '"form_id": "ingen"' not in b["payload"]]
    assert 2 <= len(form_buttons) <= 3
    for button in form_buttons:
        assert button["payload"].startswith('/find_form{"form_id": "')
        form_id = button["payload"].split('"')[3]
        assert catalogue.get(form_id).title == button["title"]
    assert buttons[-1]["title"] == "Ingen af dem"
    assert messages[0]["response"] == "utter_form_unsure"
    assert slot_events(events)["form_id"] is None


def test_button_choice_shows_that_form(catalogue):
    messages, events = run_action(ActionFindForm(), '/find_form{"form_id": "koersel"}', "find_form")
    assert catalogue.get("koersel").url in shown(messages[0])
    assert slot_events(events)["form_id"] == "koersel"


def test_none_of_these_and_no_fit_offer_help_and_a_meeting(profile):
    for text in ('/find_form{"form_id": "ingen"}', "hvornår har kantinen åbent", "asdf qwerty"):
        messages, events = run_action(ActionFindForm(), text, "find_form")
        assert len(messages) == 1, text
        payloads = [b["payload"] for b in shown_buttons(messages[0])]
        assert any(p.startswith("/request_help") for p in payloads), text
        assert any(p.startswith("/book_meeting") for p in payloads), text
        assert profile.forms_page_url in shown(messages[0])
        assert slot_events(events)["form_id"] is None


def test_a_rule_question_in_the_form_flow_points_to_the_answer():
    messages, _ = run_action(ActionFindForm(), "hvad er samtidighedsferie", "find_form")
    payloads = [b["payload"] for b in shown_buttons(messages[0])]
    assert '/ask_question{"faq_id": "ferieloven"}' in payloads


def test_menu_button_without_a_question_asks_for_one():
    messages, events = run_action(ActionFindForm(), "/find_form", "find_form")
    assert messages[0]["response"] == "utter_ask_which_form"
    assert "Skriv" in shown(messages[0]) and not shown_buttons(messages[0])
    assert slot_events(events)["form_id"] is None


# ---------------------------------------------------------------- data-only changes


def _copy_profile(tmp_path, profile):
    target = tmp_path / "profil"
    shutil.copytree(profile.directory, target)
    return target


def test_a_new_form_added_as_data_is_found(tmp_path, profile):
    folder = _copy_profile(tmp_path, profile)
    data = yaml.safe_load((folder / "forms.yml").read_text(encoding="utf-8"))
    data["forms"].append({
        "id": "arbejdsskade",
        "title": "Anmeldelse af arbejdsskade",
        "url": "{intranet}/af/blanketter/arbejdsskade",
        "area": "personale",
        "when": "Brug den, når en medarbejder kommer til skade på arbejdet.",
        "words": ["arbejdsskade", "ulykke", "kom til skade", "faldt"],
    })
    (folder / "forms.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    new_profile = load_profile(folder)
    plan = plan_form_reply("en pædagog faldt på legepladsen og kom til skade", None, new_profile)
    assert plan["form_id"] == "arbejdsskade"
    assert f"{new_profile.intranet_base_url}/af/blanketter/arbejdsskade" in plan_shown(plan)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda forms: forms.append(dict(forms[0])), "findes to gange"),
        (lambda forms: forms[0].update(area="kantine"), "area skal være"),
        (lambda forms: forms[0].pop("url"), "'url'"),
        (lambda forms: forms[0].update(id="Ny Blanket"), "små bogstaver"),
    ],
)
def test_trainer_mistakes_are_reported_in_danish(tmp_path, profile, change, message):
    folder = _copy_profile(tmp_path, profile)
    data = yaml.safe_load((folder / "forms.yml").read_text(encoding="utf-8"))
    change(data["forms"])
    (folder / "forms.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError, match=message):
        load_form_catalogue(load_profile(folder))


def test_an_edited_catalogue_is_reloaded_without_restart(tmp_path, profile):
    folder = _copy_profile(tmp_path, profile)
    new_profile = load_profile(folder)
    assert load_form_catalogue(new_profile).get("vikar").title == "Ansættelse af vikar eller timelønnet"
    path = folder / "forms.yml"
    text = path.read_text(encoding="utf-8").replace(
        "title: Ansættelse af vikar eller timelønnet", "title: Vikarer og timelønnede"
    )
    path.write_text(text, encoding="utf-8")
    import os

    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert load_form_catalogue(new_profile).get("vikar").title == "Vikarer og timelønnede"


def test_a_verb_is_not_dropped_because_it_looks_like_a_stopword_without_aeoeaa():
    # "ansætte" folds to "ansaette", whose skeleton equals that of the stopword "ansatte"
    assert textnorm.terms("ansætte") != []
    assert textnorm.terms("hvornar") == [] and textnorm.terms("hvornår") == []


def test_fallback_hint_only_for_a_clear_form(catalogue):
    plan = form_replies.form_hint("en pædagog har lagt penge ud til blomster med sit private kort")
    assert plan["form_id"] == "udlaeg" and catalogue.get("udlaeg").url in plan_shown(plan)
    assert form_replies.form_hint("hvad er klokken") is None
    assert form_replies.form_hint("noget med løn") is None  # unsure: no guess in a fallback
    assert form_replies.form_hint("/greet") is None


def test_stemming_from_many_threads_at_once_gives_the_same_stems():
    """Actions search in worker threads (asyncio.to_thread); a leader's question must
    get the same answer when others ask at the same moment (CI once crashed here)."""
    from concurrent.futures import ThreadPoolExecutor

    vocabulary = [w for w, _ in TRICKY] + ["sygedagpengerefusion", "barselsorloven", "kørselsgodtgørelsen",
                                           "fratrædelsesgodtgørelse", "ansættelseskontrakterne"] * 5
    words = [w for text in vocabulary for w in textnorm.words(text)] * 40
    raw_stem = textnorm.stem.__wrapped__  # bypass the cache: every call really stems
    expected = [raw_stem(w) for w in words]
    with ThreadPoolExecutor(max_workers=8) as pool:
        chunks = [words[i::8] for i in range(8)]
        results = list(pool.map(lambda chunk: [raw_stem(w) for w in chunk], chunks))
    got = [None] * len(words)
    for i, chunk in enumerate(results):
        got[i::8] = chunk
    assert got == expected
