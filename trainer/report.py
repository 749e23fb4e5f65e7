"""`make report FROM=2026-11-01 TO=2026-11-30`: follow-up figures for AF.

Reads the conversations in the tracker store (see trainer/conversations.py for
how each figure is recognised) and writes, for the period FROM..TO (both days
included, in the organisation's time zone):

* reports/rapport-<FROM>-<TO>.json – the figures;
* reports/rapport-<FROM>-<TO>.html – the same figures as a self-contained page
  with inline SVG charts (no scripts, fonts or images from elsewhere).

Cases are counted from the tracker store (the case the assistant created in a
conversation), not from ServiceNow: the report then works without access to
ServiceNow and counts exactly what came through the assistant.

The report also shows the outbox as it is when the report is made (not limited to
the period): how many requests still wait for ServiceNow, and the requests
ServiceNow *rejected* (dead letters, docs/servicenow.md), which wait for AF. Only
reference, day, type, topic and ServiceNow's answer are shown; names and e-mail
addresses stay in the outbox (``python -m af_core.outbox --dead``).

    python trainer/report.py --from 2026-11-01 --to 2026-11-30 [--out-dir reports]
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from af_core.textsim import normalise  # noqa: E402
from trainer import conversations as conv_mod  # noqa: E402

TOP_N = 10
DEAD_LETTERS_SHOWN = 50


def _day(timestamp: float, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(timestamp, zone).date().isoformat()


def _days(first: dt.date, last: dt.date) -> List[str]:
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _top(counter: Counter, n: int = TOP_N) -> List[Dict[str, Any]]:
    return [{"id": key, "count": count} for key, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def period_bounds(first: dt.date, last: dt.date, zone: ZoneInfo) -> Tuple[float, float]:
    start = dt.datetime.combine(first, dt.time(0), zone).timestamp()
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), zone).timestamp()
    return start, end


def compute(convs: Sequence[conv_mod.Conversation], first: dt.date, last: dt.date, zone: ZoneInfo) -> Dict[str, Any]:
    """Every figure of the report, for conversations that started in the period."""
    start, end = period_bounds(first, last, zone)
    days = _days(first, last)
    in_period = [c for c in convs if c.messages and start <= c.start < end]

    per_day = {day: 0 for day in days}
    for conv in in_period:
        per_day[_day(conv.start, zone)] += 1

    resolved = sum(1 for c in in_period if c.resolved_by_assistant)
    handoffs = sum(1 for c in in_period if c.handoff)

    cases = [case for c in in_period for case in c.cases]
    messages = [m for c in in_period for m in c.messages if not m.payload]
    fallbacks = [m for m in messages if m.fallback]

    ratings = [r for c in in_period for r in c.ratings]
    rating_days: Dict[str, List[int]] = defaultdict(list)
    for r in ratings:
        rating_days[_day(r["timestamp"], zone)].append(r["rating"])

    unrecognised: Dict[str, Dict[str, Any]] = {}
    for m in fallbacks:
        key = normalise(m.text)
        entry = unrecognised.setdefault(key, {"text": m.text, "count": 0})
        entry["count"] += 1
    top_unrecognised = sorted(unrecognised.values(), key=lambda e: (-e["count"], e["text"]))[:TOP_N]

    forms = Counter(form for c in in_period for form in dict.fromkeys(c.forms))
    faqs = Counter(faq for c in in_period for faq in dict.fromkeys(c.faqs))

    return {
        "period": {"from": first.isoformat(), "to": last.isoformat(), "timezone": str(zone)},
        "conversations": {"total": len(in_period), "per_day": per_day},
        "resolved_without_person": {"count": resolved, "share": _share(resolved, len(in_period))},
        "handoffs": {
            "count": handoffs,
            "share": _share(handoffs, len(in_period)),
            "taken_over": sum(1 for c in in_period if c.taken_over),
        },
        "cases": {
            "total": len(cases),
            "by_type": dict(sorted(Counter(c.request_type for c in cases).items())),
            "by_topic": dict(sorted(Counter(c.topic for c in cases).items())),
            "by_urgency": dict(sorted(Counter(c.urgency for c in cases).items())),
        },
        "fallback": {
            "messages": len(messages),
            "fallbacks": len(fallbacks),
            "rate": _share(len(fallbacks), len(messages)),
        },
        "ratings": {
            "count": len(ratings),
            "average": round(sum(r["rating"] for r in ratings) / len(ratings), 2) if ratings else None,
            "distribution": {str(k): sum(1 for r in ratings if r["rating"] == k) for k in range(1, 6)},
            "per_day": {
                day: {"count": len(rating_days[day]), "average": round(sum(rating_days[day]) / len(rating_days[day]), 2)}
                for day in days
                if rating_days.get(day)
            },
            "comments": [
                {"day": _day(r["timestamp"], zone), "rating": r["rating"], "comment": r["comment"]}
                for r in ratings
                if r.get("comment")
            ],
        },
        "top_forms": _top(forms),
        "top_faq": _top(faqs),
        "top_unrecognised": top_unrecognised,
    }


def outbox_figures(source: Any, zone: ZoneInfo) -> Dict[str, Any]:
    """The outbox now: requests waiting for ServiceNow, and those ServiceNow rejected.
    ``source``: the settings (the outbox the action servers use: SQLite, or PostgreSQL in the
    scaled deployment), or a SQLite file. A missing outbox is not created (nothing was queued yet)."""
    from af_core.outbox import Outbox

    figures: Dict[str, Any] = {"pending": 0, "dead": 0, "dead_letters": []}
    outbox = Outbox(Path(source)) if isinstance(source, (str, Path)) else Outbox.for_settings(source)
    if not outbox.exists():
        return figures
    dead = outbox.dead_letters()
    figures["pending"] = outbox.count_pending()
    figures["dead"] = len(dead)
    figures["dead_letters"] = [
        {
            "reference": entry.correlation_display,
            "received": dt.datetime.fromtimestamp(entry.created_at, zone).strftime("%Y-%m-%d %H:%M"),
            "request_type": entry.request_type,
            "topic": entry.topic,
            "attempts": entry.attempts,
            "error": entry.last_error,
        }
        for entry in dead[:DEAD_LETTERS_SHOWN]
    ]
    return figures


# ---------------------------------------------------------------- names for the HTML


def catalogue_names(profile_dir: Path) -> Dict[str, Dict[str, str]]:
    """Titles of forms and FAQ topics and names of case topics/urgencies from the profile."""
    import yaml

    def load(name: str) -> Dict[str, Any]:
        path = profile_dir / name
        try:
            return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            return {}

    profile, forms, faq = load("profile.yml"), load("forms.yml"), load("faq.yml")
    return {
        "forms": {f.get("id"): f.get("title", f.get("id")) for f in forms.get("forms") or [] if isinstance(f, dict)},
        "faq": {t.get("id"): t.get("title", t.get("id")) for t in faq.get("topics") or [] if isinstance(t, dict)},
        "topics": {k: (v or {}).get("name", k) for k, v in (profile.get("topics") or {}).items()},
        "urgency": {k: (v or {}).get("label", k) for k, v in (profile.get("service_levels") or {}).items()},
        "type": {"help": "hjælp", "meeting": "møde"},
    }


# ---------------------------------------------------------------- SVG charts

_BAR = "#1f5f8b"
_ACCENT = "#c0392b"


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def svg_columns(title: str, points: Sequence[Tuple[str, float]], label_every: int = 1) -> str:
    """Vertical bars, e.g. conversations per day."""
    width, height, pad_left, pad_bottom, pad_top = 760, 220, 36, 40, 16
    maximum = max([v for _, v in points] + [1])
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top
    step = plot_w / max(len(points), 1)
    bar_w = max(step * 0.7, 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_esc(title)}</title>",
        f'<line x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - 10}" y2="{pad_top + plot_h}" stroke="#888"/>',
        f'<text x="{pad_left - 6}" y="{pad_top + 4}" text-anchor="end" font-size="11">{_fmt(maximum)}</text>',
        f'<text x="{pad_left - 6}" y="{pad_top + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, (label, value) in enumerate(points):
        x = pad_left + i * step + (step - bar_w) / 2
        h = plot_h * value / maximum
        parts.append(
            f'<rect x="{x:.1f}" y="{pad_top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{_BAR}">'
            f"<title>{_esc(label)}: {_fmt(value)}</title></rect>"
        )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - pad_bottom + 14}" text-anchor="middle" '
                f'font-size="10">{_esc(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(title: str, items: Sequence[Tuple[str, float]]) -> str:
    """Horizontal bars with labels, e.g. cases by topic."""
    row, label_w, width = 24, 260, 760
    height = max(len(items), 1) * row + 10
    maximum = max([v for _, v in items] + [1])
    parts = [
        f'<svg class="chart" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_esc(title)}</title>",
    ]
    if not items:
        parts.append(f'<text x="0" y="16" font-size="12">Ingen i perioden</text>')
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        w = (width - label_w - 60) * value / maximum
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">{_esc(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{_BAR}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12">{_fmt(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_line(title: str, points: Sequence[Tuple[str, float]], low: float = 1, high: float = 5) -> str:
    """A line over days with dots, e.g. average rating (scale 1-5)."""
    width, height, pad_left, pad_bottom, pad_top = 760, 200, 36, 40, 16
    plot_w, plot_h = width - pad_left - 20, height - pad_bottom - pad_top
    parts = [
        f'<svg class="chart" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_esc(title)}</title>",
    ]
    for level in range(int(low), int(high) + 1):
        y = pad_top + plot_h * (high - level) / (high - low)
        parts.append(f'<line x1="{pad_left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{pad_left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{level}</text>')
    if not points:
        parts.append(f'<text x="{pad_left + 10}" y="{pad_top + 20}" font-size="12">Ingen bedømmelser i perioden</text>')
    coords = []
    for i, (label, value) in enumerate(points):
        x = pad_left + (plot_w * (i + 0.5) / len(points))
        y = pad_top + plot_h * (high - value) / (high - low)
        coords.append((x, y, label, value))
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{_ACCENT}" stroke-width="2"/>')
    for x, y, label, value in coords:
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{_ACCENT}"><title>{_esc(label)}: {_fmt(value)}</title></circle>'
        )
        parts.append(f'<text x="{x:.1f}" y="{height - pad_bottom + 14}" text-anchor="middle" font-size="10">{_esc(label[5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.2f}".replace(".", ",")
    return str(int(value)) if isinstance(value, float) else str(value)


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %".replace(".", ",")


def render_html(report: Dict[str, Any], names: Dict[str, Dict[str, str]]) -> str:
    p = report["period"]
    conv = report["conversations"]
    per_day = list(conv["per_day"].items())
    label_every = max(1, len(per_day) // 15)
    cases = report["cases"]
    ratings = report["ratings"]

    def named(kind: str, mapping: Dict[str, int]) -> List[Tuple[str, float]]:
        return [(names.get(kind, {}).get(k, k), v) for k, v in sorted(mapping.items(), key=lambda kv: -kv[1])]

    cards = [
        ("Samtaler", str(conv["total"])),
        ("Klaret uden en medarbejder", _pct(report["resolved_without_person"]["share"])),
        ("Sager oprettet", str(cases["total"])),
        ("Bad om en medarbejder / overtaget", f'{report["handoffs"]["count"]} / {report["handoffs"]["taken_over"]}'),
        ("Ikke forstået (andel af beskeder)", _pct(report["fallback"]["rate"])),
        ("Gennemsnitlig bedømmelse", _fmt(ratings["average"]) + " af 5" if ratings["average"] is not None else "–"),
    ]
    outbox = report.get("outbox")
    outbox_html = ""
    if outbox is not None:
        cards.append(("Afvist af ServiceNow (venter på AF)", str(outbox["dead"])))
        rows = "".join(
            f"<tr><td>{_esc(d['reference'])}</td><td>{_esc(d['received'])}</td>"
            f"<td>{_esc(names.get('type', {}).get(d['request_type'], d['request_type']))}</td>"
            f"<td>{_esc(names.get('topics', {}).get(d['topic'], d['topic']))}</td><td>{_esc(d['error'])}</td></tr>"
            for d in outbox["dead_letters"]
        ) or '<tr><td colspan="5">Ingen – ServiceNow har ikke afvist nogen henvendelser</td></tr>'
        more = outbox["dead"] - len(outbox["dead_letters"])
        outbox_html = (
            "<h2>Afvist af ServiceNow – venter på AF</h2>"
            "<p class=\"note\">Henvendelser, som ServiceNow har afvist. De er ikke tabt, men de sendes ikke igen af "
            "sig selv. Se dem med <code>python -m af_core.outbox --dead</code>, ret årsagen og send dem igen, "
            "eller opret sagen i hånden (docs/servicenow.md). "
            f"{outbox['pending']} henvendelser venter desuden på, at ServiceNow svarer.</p>"
            "<table><tr><th>Reference</th><th>Modtaget</th><th>Type</th><th>Emne</th><th>ServiceNow svarede</th></tr>"
            f"{rows}</table>" + (f"<p class=\"note\">… og {more} til.</p>" if more > 0 else "")
        )
    sections = [
        ("Samtaler pr. dag", svg_columns("Samtaler pr. dag", [(d[5:], v) for d, v in per_day], label_every)),
        ("Gennemsnitlig bedømmelse pr. dag (1–5)",
         svg_line("Gennemsnitlig bedømmelse pr. dag", [(d, v["average"]) for d, v in ratings["per_day"].items()])),
        ("Bedømmelser fordelt", svg_bars("Bedømmelser fordelt", [(f"{k} ud af 5", v) for k, v in ratings["distribution"].items()])),
        ("Sager efter type", svg_bars("Sager efter type", named("type", cases["by_type"]))),
        ("Sager efter emne", svg_bars("Sager efter emne", named("topics", cases["by_topic"]))),
        ("Sager efter hastegrad", svg_bars("Sager efter hastegrad", named("urgency", cases["by_urgency"]))),
        ("Mest brugte blanketter",
         svg_bars("Mest brugte blanketter", [(names["forms"].get(t["id"], t["id"]), t["count"]) for t in report["top_forms"]])),
        ("Mest brugte svar på regelspørgsmål",
         svg_bars("Mest brugte svar", [(names["faq"].get(t["id"], t["id"]), t["count"]) for t in report["top_faq"]])),
    ]
    unrecognised = "".join(
        f"<tr><td>{_esc(u['text'])}</td><td class=num>{u['count']}</td></tr>" for u in report["top_unrecognised"]
    ) or '<tr><td colspan="2">Ingen i perioden</td></tr>'
    comments = "".join(
        f"<tr><td>{_esc(c['day'])}</td><td class=num>{c['rating']}</td><td>{_esc(c['comment'])}</td></tr>"
        for c in ratings["comments"][-20:]
    ) or '<tr><td colspan="3">Ingen kommentarer i perioden</td></tr>'
    return f"""<!DOCTYPE html>
<html lang="da">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AF-assistenten: rapport {_esc(p['from'])} – {_esc(p['to'])}</title>
<style>
body {{ font-family: Arial, Helvetica, sans-serif; margin: 2rem; color: #222; max-width: 820px; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.15rem; margin-top: 2rem; }}
.cards {{ display: flex; flex-wrap: wrap; gap: .75rem; }}
.card {{ border: 1px solid #ccc; border-radius: 6px; padding: .6rem .9rem; min-width: 230px; }}
.card b {{ display: block; font-size: 1.4rem; color: #1f5f8b; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: .3rem; text-align: left; }}
.num {{ text-align: right; }} svg {{ max-width: 100%; height: auto; }}
.note {{ color: #555; font-size: .9rem; }}
</style>
</head>
<body>
<h1>AF-assistenten: rapport for {_esc(p['from'])} – {_esc(p['to'])}</h1>
<div class="cards">{''.join(f'<div class="card">{_esc(t)}<b>{_esc(v)}</b></div>' for t, v in cards)}</div>
{''.join(f'<h2>{_esc(title)}</h2>{chart}' for title, chart in sections)}
<h2>Det, assistenten oftest ikke forstod</h2>
<table><tr><th>Besked (CPR-numre fjernet)</th><th class=num>Antal</th></tr>{unrecognised}</table>
<h2>Seneste kommentarer til bedømmelser</h2>
<table><tr><th>Dag</th><th class=num>Karakter</th><th>Kommentar</th></tr>{comments}</table>
{outbox_html}
<p class="note">En samtale er én session (ny efter 60 minutters stilhed) med mindst én besked fra lederen,
talt på den dag, lederen skrev første gang. «Klaret uden en medarbejder»: lederen fik en blanket, et svar,
en sag eller en status, og ingen medarbejder var inde over. «Bad om en medarbejder»: lederen bad om at
tale med en person; «overtaget»: en medarbejder tog over i chatten. Sager er dem, assistenten oprettede.
Tidszone: {_esc(p['timezone'])}.</p>
</body>
</html>
"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    from af_core.settings import ConfigError, get_settings

    parser = argparse.ArgumentParser(description="Rapport over AF-assistentens brug i en periode.")
    parser.add_argument("--from", dest="first", required=True, help="første dag, fx 2026-11-01")
    parser.add_argument("--to", dest="last", required=True, help="sidste dag, fx 2026-11-30")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "reports")
    parser.add_argument("--db-url", help="tracker store (standard: som Rasa-serveren bruger)")
    args = parser.parse_args(argv)
    try:
        first, last = dt.date.fromisoformat(args.first), dt.date.fromisoformat(args.last)
    except ValueError:
        print("FEJL: skriv datoerne som ÅÅÅÅ-MM-DD, fx FROM=2026-11-01 TO=2026-11-30", file=sys.stderr)
        return 2
    if last < first:
        print("FEJL: TO skal være samme dag som FROM eller senere.", file=sys.stderr)
        return 2
    try:
        settings = get_settings()
        db_url = args.db_url or conv_mod.tracker_url(settings)
        from af_core.profile import get_profile

        zone = ZoneInfo(get_profile().timezone)
    except ConfigError as exc:
        print(f"FEJL i opsætningen: {exc}", file=sys.stderr)
        return 1
    start, end = period_bounds(first, last, zone)
    try:
        by_sender = conv_mod.load_events(db_url, since=start - 86400, until=end + 86400)
    except Exception as exc:
        print(f"FEJL: kunne ikke læse samtalerne: {exc}", file=sys.stderr)
        return 1
    report = compute(conv_mod.conversations(by_sender), first, last, zone)
    try:
        report["outbox"] = outbox_figures(settings, zone)
    except Exception as exc:  # the figures above do not depend on the outbox
        where = "PostgreSQL, af_outbox" if settings.tracker_store == "postgres" else settings.outbox_path
        print(f"ADVARSEL: kunne ikke læse udbakken ({where}): {exc}", file=sys.stderr)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"rapport-{first.isoformat()}-{last.isoformat()}"
    json_path, html_path = args.out_dir / f"{stem}.json", args.out_dir / f"{stem}.html"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    html_path.write_text(render_html(report, catalogue_names(settings.profile_dir)), encoding="utf-8")
    print(f"{report['conversations']['total']} samtaler, {report['cases']['total']} sager, "
          f"gennemsnitlig bedømmelse {_fmt(report['ratings']['average']) if report['ratings']['average'] is not None else '–'}.")
    dead = (report.get("outbox") or {}).get("dead", 0)
    if dead:
        print(f"OBS: {dead} henvendelse(r) er afvist af ServiceNow og venter på AF "
              "(python -m af_core.outbox --dead).")
    print(f"Rapporten er gemt i {html_path} (åbn den i en browser) og tallene i {json_path}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
