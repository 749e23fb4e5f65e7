"""The trainers' request vocabulary (profiles/*/vocabulary.yml): valid, and read as leaders write."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from af_core.profile import load_profile
from af_core.request_vocabulary import VocabularyError, load_vocabulary, parse_vocabulary

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted(p.parent for p in (ROOT / "profiles").glob("*/vocabulary.yml"))
BUF = load_vocabulary(load_profile(ROOT / "profiles" / "buf"))


@pytest.mark.parametrize("directory", PROFILES, ids=lambda p: p.name)
def test_every_profiles_vocabulary_loads_with_its_own_topics_and_urgencies(directory):
    vocabulary = load_vocabulary(load_profile(directory))
    assert set(vocabulary.topics.values) <= set(load_profile(directory).topics)


def test_a_word_under_two_values_is_refused_with_a_danish_message():
    data = yaml.safe_load((ROOT / "profiles" / "buf" / "vocabulary.yml").read_text(encoding="utf-8"))
    data["topics"]["personale"].append("Løn")
    with pytest.raises(VocabularyError, match="står både under"):
        parse_vocabulary(data, ["loen", "personale", "indkoeb", "oekonomi", "arbejdstid", "andet"],
                         ["akut", "snart", "ingen_hast"], "vocabulary.yml")
    data = {"topics": {"ukendt": ["x"]}}
    with pytest.raises(VocabularyError, match="skal være en af"):
        parse_vocabulary(data, ["loen"], ["akut"], "vocabulary.yml")


@pytest.mark.parametrize("text, topic", [
    ("lønseddelspørgsmål", "loen"), ("loen", "loen"), ("lon", "loen"), ("persnale", "personale"),
    ("vikarløn", "personale"), ("tidsregistrering", "arbejdstid"), ("kan I rette mødeplanen", "arbejdstid"),
    ("nej vent, det er ikke løn, det er arbejdstid", "arbejdstid"), ("løn, nej hellere personale", "personale"),
    ("medarbejder", None),  # own staff: not a typo of "merarbejde"
])
def test_topics(text, topic):
    assert BUF.topic(text) == topic


@pytest.mark.parametrize("text, channel", [
    ("teamsmøde", "teams"), ("kan jeg faa et teams moede", "teams"), ("tlf", "telefon"),
    ("ikke teams men fysisk", "fysisk"), ("fysisk, nej hellere telefon", "telefon"),
    ("telefon i stedet for teams", "telefon"), ("telefon eller teams", None),
    ("må jeg kræve en lægeerklæring", None),  # "-ring" at the end is no call
    ("hun har lige ringet", None),
])
def test_channels(text, channel):
    assert BUF.channel(text) == channel


@pytest.mark.parametrize("text, urgency", [
    ("det haster ikke", "ingen_hast"), ("ikke akut men gerne inden for et par dage", "snart"),
    ("akkut", "akut"), ("det er ikke saa vigtigt, bare naar i naar det", "ingen_hast"),
    ("øh det ved jeg ikke rigtigt", None),  # "ikke rigtigt" is no typo of "ikke vigtigt"
])
def test_urgency(text, urgency):
    assert BUF.urgency_level(text) == urgency


def test_short_urgency_answers_count_only_when_asked_and_alone():
    assert BUF.urgency_level("lige meget", asked=True) == "ingen_hast"
    assert BUF.urgency_level("lige meget") is None
    assert BUF.urgency_level("nej, det skal være telefon", asked=True) is None


def test_whole_answers():
    assert BUF.is_only("confirm", "Ja tak, det er korrekt!")
    assert not BUF.is_only("confirm", "ja men hellere telefon")
    assert BUF.says("cancel", "aah glem det, min souschef har ordnet det")
    assert not BUF.says("cancel", "hun er stoppet")  # "stop" is not read inside "stoppet"
    assert BUF.asks_for_a_call("kan en konsulent ringe mig op")
    assert not BUF.asks_for_a_call("en oversigt til vores MED-møde")


def test_an_unquoted_yes_is_refused_with_a_danish_hint_and_the_quoted_one_confirms():
    """YAML reads `- yes` as true: 'yes det er korrekt' then confirmed nothing (blind batch C)."""
    text = (ROOT / "profiles" / "buf" / "vocabulary.yml").read_text(encoding="utf-8")
    data = yaml.safe_load(text.replace('- "yes"', "- yes"))
    with pytest.raises(VocabularyError, match="anførselstegn"):
        parse_vocabulary(data, ["loen", "personale", "indkoeb", "oekonomi", "arbejdstid", "andet"],
                         ["akut", "snart", "ingen_hast"], "vocabulary.yml")
    assert BUF.is_only("confirm", "yes det er korrekt")


# ------------------------------------------------------------------ the vocabulary is the profile's
URGENCIES = ["akut", "snart", "ingen_hast"]
TOPICS = ["loen", "personale", "indkoeb", "oekonomi", "arbejdstid", "andet"]


def _buf_data():
    return yaml.safe_load((ROOT / "profiles" / "buf" / "vocabulary.yml").read_text(encoding="utf-8"))


def test_urgency_words_without_a_time_frame_come_from_the_profile():
    text = "det haster alligevel, gerne inden for et par dage"
    assert BUF.urgency_level(text) == "snart"
    data = _buf_data()
    del data["urgency_without_time_frame"]
    assert parse_vocabulary(data, TOPICS, URGENCIES, "vocabulary.yml").urgency_level(text) is None


@pytest.mark.parametrize("words, message", [
    (["haster", "brandvarmt"], "skal også stå under en af hastegraderne"),
    (["haster", "haster ikke"], "under én og samme hastegrad"),
    ("haster", "skal være en liste"),
])
def test_urgency_words_without_a_time_frame_are_checked_with_a_danish_message(words, message):
    data = _buf_data()
    data["urgency_without_time_frame"] = words
    with pytest.raises(VocabularyError, match=message):
        parse_vocabulary(data, TOPICS, URGENCIES, "vocabulary.yml")


def test_another_administration_names_its_own_urgency_levels_and_topics():
    """Nothing in the code knows 'akut' or 'loen': a profile with other keys reads its own words."""
    data = _buf_data()
    data["topics"] = {"bibliotek": ["udlån", "bøger"], "idraet": ["hal", "bane"]}
    data["urgency"] = {"straks": ["haster", "brandvarmt"], "normal": ["inden for en uge"]}
    data["urgency_when_asked"] = {"normal": ["lige meget"]}
    data["urgency_without_time_frame"] = ["haster"]
    vocabulary = parse_vocabulary(data, ["bibliotek", "idraet"], ["straks", "normal"], "vocabulary.yml")
    assert vocabulary.topic("banen i hallen er dobbeltbooket") == "idraet"
    assert vocabulary.urgency_level("det er brandvarmt") == "straks"
    assert vocabulary.urgency_level("det haster, men inden for en uge er fint") == "normal"
    with pytest.raises(VocabularyError, match="'ingen_hast' under 'urgency' skal være en af normal, straks"):
        parse_vocabulary(_buf_data(), TOPICS, ["straks", "normal"], "vocabulary.yml")


def test_channel_words_only_for_the_channels_the_profile_offers():
    with pytest.raises(VocabularyError, match="'teams' under 'channels' skal være en af fysisk, telefon"):
        parse_vocabulary(_buf_data(), TOPICS, URGENCIES, "vocabulary.yml", channels=["fysisk", "telefon"])


def test_a_trainers_new_word_works_without_code_or_restart(tmp_path):
    import shutil

    folder = tmp_path / "profil"
    shutil.copytree(ROOT / "profiles" / "buf", folder)
    profile = load_profile(folder)
    assert profile.vocabulary().topic("spørgsmål om min kilometerbog") is None
    path = folder / "vocabulary.yml"
    text = path.read_text(encoding="utf-8").replace("  loen:\n    - løn\n", "  loen:\n    - løn\n    - kilometerbog\n", 1)
    path.write_text(text, encoding="utf-8")
    import os

    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))  # a later edit, whatever the clock
    assert load_vocabulary(profile).topic("spørgsmål om min kilometerbog") == "loen"
