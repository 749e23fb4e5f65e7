"""Rule questions: short Danish answers with a link, then "did that help?" and a follow-up offer."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from actions.faq import ActionAnswerFaq, ActionFaqFeedback
from af_core.catalogue import load_faq_catalogue, search_faq
from af_core.faq_replies import plan_faq_reply
from af_core.profile import ProfileError, get_profile, load_profile
from tests.domain_helpers import plan_shown, shown, shown_buttons
from tests.knowledge_helpers import run_action, sentences, slot_events, story_turns

REQUIRED_TOPICS = {
    "ferieloven", "omsorgsdage", "barselsregler", "sygesamtale", "laegeerklaering",
    "loenudbetaling", "laerernes_arbejdstid", "gdpr_personalesager",
}


@pytest.fixture(scope="module")
def profile():
    return get_profile()


@pytest.fixture(scope="module")
def catalogue(profile):
    return load_faq_catalogue(profile)


def test_every_required_topic_has_a_short_answer_a_link_and_a_topic(catalogue, profile):
    ids = {t.id for t in catalogue.topics}
    assert REQUIRED_TOPICS <= ids
    for topic in catalogue.topics:
        assert 2 <= sentences(topic.answer) <= 4, (topic.id, sentences(topic.answer))
        assert topic.url.startswith(profile.intranet_base_url + "/"), topic.id
        assert topic.topic in profile.topics


def test_the_holiday_answer_states_the_rules_in_force(catalogue):
    answer = catalogue.get("ferieloven").answer
    for fact in ("samtidighedsferie", "2,08", "1. september til 31. august", "31. december"):
        assert fact in answer


def test_agreement_dependent_answers_say_so(catalogue):
    assert "overenskomst" in catalogue.get("omsorgsdage").answer
    assert "overenskomst" in catalogue.get("barselsregler").answer


@pytest.mark.parametrize("story,text,faq_id", story_turns("action_answer_faq", "faq_id"))
def test_test_story_texts_get_the_answer_the_story_expects(story, text, faq_id):
    messages, events = run_action(ActionAnswerFaq(), text, "ask_question")
    assert slot_events(events)["faq_id"] == faq_id, (story, text, messages)


def test_stories_cover_every_topic(catalogue):
    covered = {faq_id for _, _, faq_id in story_turns("action_answer_faq", "faq_id")}
    assert {t.id for t in catalogue.topics} <= covered


@pytest.mark.parametrize(
    "text,faq_id",
    [
        ("hvad er reglerne om samtidighedsferie", "ferieloven"),
        ("hvor mange feriedage optjener man", "ferieloven"),
        ("omsorgsdage for et barn på 5", "omsorgsdage"),
        ("hvornaar skal man holde sygesamtale", "sygesamtale"),
        ("må jeg bede om en friattest", "laegeerklaering"),
        ("lonsedlen er ikke kommet i eboks", "loenudbetaling"),
        ("lærernes årsnorm", "laerernes_arbejdstid"),
        ("må jeg skrive cpr nummer i en mail", "gdpr_personalesager"),
        ("øremærket barsel til far", "barselsregler"),
    ],
)
def test_typical_questions_find_their_topic(text, faq_id):
    decision = search_faq(text)
    assert decision.best is not None and decision.best.id == faq_id, (text, decision)


def test_answer_has_text_link_and_asks_if_it_helped(catalogue):
    messages, events = run_action(ActionAnswerFaq(), "hvordan virker samtidighedsferie", "ask_question")
    topic = catalogue.get("ferieloven")
    assert topic.answer in shown(messages[0]) and topic.url in shown(messages[0])
    assert [m["response"] for m in messages] == ["utter_faq_answer", "utter_ask_faq_helped"]
    assert shown(messages[1]) == "Hjalp det svar dig?"
    assert [b["payload"] for b in shown_buttons(messages[1])] == ["/affirm", "/deny"]
    slots = slot_events(events)
    assert slots["faq_id"] == "ferieloven" and slots["faq_feedback_pending"] is True


def test_not_helped_offers_help_or_a_meeting_about_the_same_topic(profile):
    messages, events = run_action(
        ActionFaqFeedback(), "nej", "deny", slots={"faq_id": "loenudbetaling", "faq_feedback_pending": True}
    )
    payloads = [b["payload"] for b in shown_buttons(messages[0])]
    assert "/request_help" + json.dumps({"topic": "loen"}) in payloads
    assert "/book_meeting" + json.dumps({"topic": "loen"}) in payloads
    assert "/human_handoff" in payloads
    assert messages[0]["response"] == "utter_faq_not_helped" and messages[0]["topic_name"] == "løn"
    assert profile.topics["loen"]["name"] in shown(messages[0])
    assert slot_events(events)["faq_feedback_pending"] is False


def test_helped_closes_without_pushing_more(profile):
    messages, events = run_action(
        ActionFaqFeedback(), "ja", "affirm", slots={"faq_id": "omsorgsdage", "faq_feedback_pending": True}
    )
    assert len(messages) == 1 and not shown_buttons(messages[0])
    assert slot_events(events)["faq_feedback_pending"] is False


def test_yes_to_a_list_of_topics_is_not_taken_as_feedback():
    messages, _ = run_action(ActionFaqFeedback(), "ja", "affirm", slots={"faq_feedback_pending": False})
    assert messages[0]["response"] == "utter_faq_pick_a_topic"
    assert "Vælg et af emnerne" in shown(messages[0])
    assert "Hjalp" not in shown(messages[0])


def test_an_answer_in_the_middle_of_an_order_does_not_ask_if_it_helped(catalogue):
    messages, events = run_action(
        ActionAnswerFaq(), "hvor mange omsorgsdage har man", "ask_question", active_loop="request_form"
    )
    assert len(messages) == 1 and catalogue.get("omsorgsdage").answer in shown(messages[0])
    assert slot_events(events)["faq_feedback_pending"] is False


def test_button_choice_answers_that_topic(catalogue):
    messages, events = run_action(ActionAnswerFaq(), '/ask_question{"faq_id": "omsorgsdage"}', "ask_question")
    assert catalogue.get("omsorgsdage").answer in shown(messages[0])
    assert slot_events(events)["faq_id"] == "omsorgsdage"


def test_unsure_question_offers_topics_as_buttons_without_asking_for_feedback():
    messages, events = run_action(ActionAnswerFaq(), "ferie", "ask_question")
    buttons = [b for b in shown_buttons(messages[0]) if b["payload"].startswith("/ask_question")]
    assert 2 <= len(buttons) <= 3
    # "ferie" is also clearly the holiday form: offered as one more button
    assert shown_buttons(messages[0])[-1]["payload"] == '/find_form{"form_id": "ferie"}'
    assert slot_events(events)["faq_feedback_pending"] is False


def test_a_form_question_asked_as_a_rule_question_gets_the_form(profile):
    plan = plan_faq_reply("kørselsgodtgørelse", None, profile)
    assert plan["kind"] == "form" and plan["form_id"] == "koersel"


def test_no_answer_offers_help_and_a_meeting():
    messages, events = run_action(ActionAnswerFaq(), "hvad koster en kaffe i kantinen", "ask_question")
    payloads = [b["payload"] for b in shown_buttons(messages[0])]
    assert "/request_help" in payloads and "/book_meeting" in payloads
    assert slot_events(events)["faq_feedback_pending"] is False


def test_menu_button_without_a_question_asks_for_one():
    messages, events = run_action(ActionAnswerFaq(), "/ask_question", "ask_question")
    assert messages[0]["response"] == "utter_ask_which_rule"
    assert "Skriv dit spørgsmål" in shown(messages[0])
    assert slot_events(events)["faq_feedback_pending"] is False


def test_a_new_topic_added_as_data_is_answered(tmp_path, profile):
    folder = tmp_path / "profil"
    shutil.copytree(profile.directory, folder)
    data = yaml.safe_load((folder / "faq.yml").read_text(encoding="utf-8"))
    data["topics"].append({
        "id": "tjenesterejser",
        "title": "Tjenesterejser",
        "topic": "oekonomi",
        "url": "{intranet}/hr/tjenesterejser",
        "answer": "Tjenesterejser skal godkendes af dig på forhånd. Udgifterne afregnes bagefter.",
        "words": ["tjenesterejse", "studietur", "rejse i arbejdet"],
    })
    (folder / "faq.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    new_profile = load_profile(folder)
    plan = plan_faq_reply("hvad er reglerne for en studietur", None, new_profile)
    assert plan["faq_id"] == "tjenesterejser"
    assert f"{new_profile.intranet_base_url}/hr/tjenesterejser" in plan_shown(plan)


def test_a_topic_with_an_unknown_follow_up_topic_is_refused(tmp_path, profile):
    folder = tmp_path / "profil"
    shutil.copytree(profile.directory, folder)
    data = yaml.safe_load((folder / "faq.yml").read_text(encoding="utf-8"))
    data["topics"][0]["topic"] = "kantine"
    (folder / "faq.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError, match="topic skal være"):
        load_faq_catalogue(load_profile(folder))


def test_a_rule_answer_links_its_related_form(profile):
    from af_core.catalogue import load_form_catalogue

    plan = plan_faq_reply("hvor mange uger barsel har en far ret til", None, profile)
    assert plan["faq_id"] == "barselsregler" and plan["related_forms"] == ["barsel"]
    assert load_form_catalogue(profile).get("barsel").url in plan_shown(plan)


def test_a_related_form_that_does_not_exist_is_refused(tmp_path, profile):
    folder = tmp_path / "profil"
    shutil.copytree(profile.directory, folder)
    data = yaml.safe_load((folder / "faq.yml").read_text(encoding="utf-8"))
    data["topics"][0]["forms"] = ["findes_ikke"]
    (folder / "faq.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError, match="findes ikke i forms.yml"):
        load_faq_catalogue(load_profile(folder))


def test_a_question_whose_words_name_a_form_far_more_than_a_rule_topic_gets_the_form(profile):
    """'kan jeg give min TR et tillæg for ekstra opgaver' is asked like a rule question (NLU:
    ask_question), but it is the pay-change form; a weak rule topic must not answer it."""
    plan = plan_faq_reply("kan jeg give min TR et tillæg for ekstra opgaver", None, profile)
    assert plan["kind"] == "form" and plan["form_id"] == "loenaendring"
    # A real rule question keeps its rule answer.
    assert plan_faq_reply("hvornår er der løn i december", None, profile)["faq_id"] == "loenudbetaling"
