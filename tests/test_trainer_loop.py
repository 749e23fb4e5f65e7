"""The AF trainer's loop, end to end, with the same commands docs/traening.md gives:

review → annotate the CSV → add → retrain (train + held-out evaluation + verdict)
→ activate → rollback.

It runs on a copy of tests/fixtures/trainer_project (a tiny Rasa project with a
small config), so it never touches the real training data and each training
takes seconds, not minutes. The scripts are the real ones; only --root points
them at the copy.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from af_core.textsim import normalise
from tests.tracker_builder import Conv, write_store

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "trainer_project"


def run(root: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AF_", "RASA_API"))}
    env.update({"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "AF_MODE": "development"})
    return subprocess.run(
        [sys.executable, *args, "--root", str(root)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )


def read_csv(path: Path) -> list:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def write_csv(path: Path, rows: list) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=";")
        writer.writeheader()
        writer.writerows(rows)


class _Lookup(dict):
    """Rows by normalised text (the review file shows one spelling of each message)."""

    def __getitem__(self, text: str):
        return dict.__getitem__(self, normalise(text))


def pointer(root: Path, name: str = "i-drift") -> str:
    return (root / "models" / name).read_text(encoding="utf-8").strip()


def conversations(now: float) -> list:
    return [
        Conv("l1", now - 3600).fallback("hvor er skemaet til kørsel", "find_form", 0.30),
        Conv("l2", now - 7200).fallback("Hvor er skemaet til  koersel?", "find_form", 0.25),
        Conv("l3", now - 5000).fallback("hvor er skemaet til kørselsgodtgørelse", "ask_question", 0.31),
        Conv("l4", now - 4000).user("hvad siger reglerne om 6. ferieuge", "ask_question", 0.42),
        Conv("l5", now - 3000).user("min løn er forkert for 0102031234", "find_form", 0.90)
        .user("jeg vil tale med en person", "human_handoff", 0.99).pause(),
        Conv("l6", now - 4 * 3600).user("jeg vil bestille hjælp", "find_form", 0.80).action("request_form")
        .loop("request_form").listen().user("det handler om en sygemelding", "ask_question", 0.90),
        Conv("l7", now - 100).user("hej", "greet", 0.99).action("utter_greet").listen(),
        Conv("l8", now - 40 * 86400).fallback("for gammel til gennemgangen", "greet", 0.2),
    ]


def test_review_add_retrain_activate_rollback(tmp_path):
    root = tmp_path / "projekt"
    shutil.copytree(FIXTURE, root)

    # --- the model in service before the trainer starts (trained and measured the same way)
    first = run(root, "-m", "trainer", "retrain", "--skip-stories", "--min-f1", "0.5")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "ikke målt på samme måde" in first.stdout  # nothing in service yet to compare with
    baseline = json.loads((root / "models" / "kandidat.json").read_text())["model"]
    assert (root / "models" / baseline).exists()
    activated = run(root, "-m", "trainer", "activate", "--no-reload")
    assert activated.returncode == 0, activated.stderr
    assert pointer(root) == baseline

    # --- review: what went badly in the last 14 days
    db = write_store(tmp_path / "tracker.db", conversations(time.time()))
    review_file = root / "review" / "til-gennemgang.csv"
    reviewed = run(root, "-m", "trainer", "review", "--db-url", db, "--out", str(review_file))
    assert reviewed.returncode == 0, reviewed.stderr
    assert "make add FILE=" in reviewed.stdout
    rows = read_csv(review_file)
    by_text = {normalise(row["tekst"]): row for row in rows}
    by_text = _Lookup(by_text)
    # the two spellings of the same message are one row counted twice
    assert by_text["hvor er skemaet til kørsel"]["antal"] == "2"
    assert by_text["hvor er skemaet til kørsel"]["aarsag"] == "ikke forstået"
    assert by_text["hvor er skemaet til kørsel"]["forudsagt_intent"] == "find_form"
    # a similar message shares its group; a different one does not
    assert by_text["hvor er skemaet til kørselsgodtgørelse"]["gruppe"] == by_text["hvor er skemaet til kørsel"]["gruppe"]
    assert by_text["hvad siger reglerne om 6. ferieuge"]["gruppe"] != by_text["hvor er skemaet til kørsel"]["gruppe"]
    assert by_text["hvad siger reglerne om 6. ferieuge"]["aarsag"] == "usikker"
    assert by_text["hvad siger reglerne om 6. ferieuge"]["sikkerhed"] == "0,42"
    assert by_text["min løn er forkert for [CPR-nummer fjernet]"]["aarsag"] == "før medarbejder"
    assert by_text["det handler om en sygemelding"]["aarsag"] == "opgivet midt i"
    assert "0102031234" not in review_file.read_text(encoding="utf-8-sig")
    assert not any("hej" == row["tekst"] or "gammel" in row["tekst"] for row in rows)
    assert all(row["ret_intent"] == "" for row in rows)

    # --- annotate, with a typo in one label first
    labels = {
        "hvor er skemaet til kørsel": "find_form",
        "hvor er skemaet til kørselsgodtgørelse": "find_from",  # typo
        "hvad siger reglerne om 6. ferieuge": "ask_question",
        "min løn er forkert for [CPR-nummer fjernet]": "ignorer",
    }
    labels = {normalise(text): label for text, label in labels.items()}
    for row in rows:
        row["ret_intent"] = labels.get(normalise(row["tekst"]), "")
    write_csv(review_file, rows)
    nlu_before = sorted(p.name for p in (root / "data" / "nlu").iterdir())
    refused = run(root, "-m", "trainer", "add", str(review_file))
    assert refused.returncode == 1
    assert "find_from" in refused.stderr and "Mente du «find_form»" in refused.stderr
    assert sorted(p.name for p in (root / "data" / "nlu").iterdir()) == nlu_before  # nothing changed

    for row in rows:
        if row["ret_intent"] == "find_from":
            row["ret_intent"] = "find_form"
    write_csv(review_file, rows)
    added = run(root, "-m", "trainer", "add", str(review_file))
    assert added.returncode == 0, added.stderr
    assert "find_form: +2" in added.stdout and "ask_question: +1" in added.stdout
    trainer_file = root / "data" / "nlu" / "fra-traenere.yml"
    data = yaml.safe_load(trainer_file.read_text(encoding="utf-8"))
    examples = {item["intent"]: item["examples"] for item in data["nlu"]}
    assert normalise("hvor er skemaet til kørsel") in [normalise(line) for line in examples["find_form"].splitlines()]
    assert "- hvor er skemaet til kørselsgodtgørelse\n" in examples["find_form"]
    assert "- hvad siger reglerne om 6. ferieuge\n" in examples["ask_question"]
    assert "løn" not in trainer_file.read_text(encoding="utf-8")  # "ignorer" and empty labels are skipped
    again = run(root, "-m", "trainer", "add", str(review_file))
    assert again.returncode == 0 and "Ingen nye eksempler" in again.stdout
    assert "findes allerede" in again.stdout

    # --- retrain: a new model, measured and compared with the one in service
    second = run(root, "-m", "trainer", "retrain", "--skip-stories", "--min-f1", "0.5")
    assert second.returncode in (0, 1), second.stdout + second.stderr
    info = json.loads((root / "models" / "kandidat.json").read_text())
    candidate = info["model"]
    assert candidate != baseline and (root / "models" / candidate).exists()
    assert info["in_service"] == baseline
    assert "Modellen i drift forstod" in second.stdout
    assert "testbeskeder, begge modeller er testet på" in second.stdout
    verdict_words = {"better": "BEDRE", "worse": "DÅRLIGERE", "same": "LIGE SÅ GOD"}
    assert info["kind"] in verdict_words and verdict_words[info["kind"]] in second.stdout
    assert (second.returncode == 0) == info["approved"]
    assert pointer(root) == baseline  # nothing goes into service by itself

    # --- activate (a candidate the comparison rejected needs FORCE)
    activated = run(root, "-m", "trainer", "activate", "--no-reload")
    if not info["approved"]:
        assert activated.returncode == 1 and "ikke godkendt" in activated.stderr
        assert pointer(root) == baseline
        activated = run(root, "-m", "trainer", "activate", "--no-reload", "--force")
    assert activated.returncode == 0, activated.stderr
    assert pointer(root) == candidate and pointer(root, "i-drift.forrige") == baseline
    started = run(root, "-m", "trainer", "path")
    assert started.stdout.strip() == str(root / "models" / candidate)

    # --- roll back
    rolled = run(root, "-m", "trainer", "rollback", "--no-reload")
    assert rolled.returncode == 0, rolled.stderr
    assert pointer(root) == baseline
    assert run(root, "-m", "trainer", "path").stdout.strip() == str(root / "models" / baseline)
    history = (root / "models" / "drift-historik.log").read_text(encoding="utf-8")
    assert history.count("i drift:") == 2 and "rullet tilbage" in history
