"""What every channel does to a message before Rasa sees it (no server needed)."""
from af_core.privacy import CPR_MASK
from af_core.settings import load_settings
from channels.inbound import prepare

DEV = load_settings({"AF_MODE": "development", "AF_MAX_MESSAGE_LENGTH": "100"})


def test_cpr_number_is_masked_and_the_leader_is_told_kindly():
    prepared = prepare("Min medarbejder 010203-1234 er syg", {}, DEV)
    assert "010203-1234" not in prepared.text and CPR_MASK in prepared.text
    assert prepared.metadata["cpr_masked"] == 1
    assert len(prepared.notices) == 1 and "CPR" in prepared.notices[0]


def test_too_long_message_is_cut_and_the_leader_is_asked_to_write_shorter():
    prepared = prepare("ord " * 200, {}, DEV)
    assert len(prepared.text) == 100
    assert prepared.metadata["too_long"] is True
    assert "kortere" in prepared.notices[0] and "100 tegn" in prepared.notices[0]


def test_ordinary_message_gets_no_notice():
    prepared = prepare("hvor finder jeg blanketten til kørsel?", {}, DEV)
    assert prepared.notices == [] and prepared.metadata == {}


def test_lone_surrogates_and_control_characters_are_removed():
    prepared = prepare("hej\ud800 med\x00 dig", {}, DEV)
    assert prepared.text == "hej med dig"
    prepared.text.encode("utf-8")  # would raise on a lone surrogate
