"""Every process logs through one set-up: to its file or (containers) to standard output,
as text or JSON, and never with a CPR number or a token in it (issue 15)."""
from __future__ import annotations

import io
import json
import logging

import pytest

from af_core.logsetup import configure_logging
from af_core.settings import load_settings


@pytest.fixture(autouse=True)
def _restore_root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_containers_get_json_lines_on_stdout_with_cpr_and_tokens_masked(tmp_path):
    settings = load_settings({"AF_MODE": "development", "AF_LOG_TARGET": "stdout", "AF_LOG_FORMAT": "json",
                              "AF_LOG_DIR": str(tmp_path / "logs")})
    out = io.StringIO()
    configure_logging(settings, "web", stream=out)
    logging.getLogger("web.support").warning("Leder skrev 010203-1234 via /x?token=hemmelig-vaerdi-123")
    try:
        raise ValueError("cpr 0102031234 i en fejl")
    except ValueError:
        logging.getLogger("af_core.outbox").exception("Fejl for 01.02.03-1234")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(l["level"], l["logger"], l["process"]) for l in lines] == [
        ("WARNING", "web.support", "web"), ("ERROR", "af_core.outbox", "web")]
    text = out.getvalue()
    assert "1234" not in text and "hemmelig-vaerdi" not in text
    assert "[CPR-nummer fjernet]" in lines[0]["message"] and "ValueError" in lines[1]["exc"]
    assert not (tmp_path / "logs").exists()  # nothing written to disk in a container


def test_make_run_gets_one_text_file_per_process(tmp_path):
    settings = load_settings({"AF_MODE": "development", "AF_LOG_DIR": str(tmp_path)})
    handler = configure_logging(settings, "outbox")
    logging.getLogger("af_core.outbox").info("Leveret AFH0001234 for 0102031234")
    handler.flush()
    text = (tmp_path / "outbox.log").read_text(encoding="utf-8")
    assert "INFO af_core.outbox: Leveret AFH0001234 for [CPR-nummer fjernet]" in text


def test_an_unknown_log_target_is_a_configuration_error():
    from af_core.settings import ConfigError

    with pytest.raises(ConfigError, match="AF_LOG_TARGET"):
        load_settings({"AF_MODE": "development", "AF_LOG_TARGET": "syslog"})
