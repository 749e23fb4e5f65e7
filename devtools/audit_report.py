"""Read pip-audit's JSON for each lock and compare it with docs/accepted-risks.txt.

Prints every finding (accepted or new) in Danish and exits with
  0  no new finding (accepted findings are printed, they do not fail),
  1  at least one finding that is not in docs/accepted-risks.txt,
  3  nothing could be checked (PyPI's vulnerability data was not reachable).
Standard library only: it runs in the tools venv (scripts/tools_venv.sh).

Usage: audit_report.py ACCEPTED_FILE LOCK=JSON [LOCK=JSON ...]
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Acceptance:
    package: str
    version: str
    finding: str  # an id or alias, or "*"
    reason: str
    line: int


def load_accepted(path: Path) -> List[Acceptance]:
    accepted = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 3 or "==" not in parts[0]:
            raise SystemExit(f"FEJL: {path}:{number}: forventer 'PAKKE==VERSION FUND BEGRUNDELSE', fik {raw!r}")
        package, version = parts[0].split("==", 1)
        accepted.append(Acceptance(norm(package), version, parts[1].upper() if parts[1] != "*" else "*",
                                   " ".join(parts[2:]), number))
    return accepted


def match(accepted: List[Acceptance], package: str, version: str, ids: List[str]) -> Optional[Acceptance]:
    wanted = {i.upper() for i in ids}
    for entry in accepted:
        if entry.package == norm(package) and entry.version == version:
            if entry.finding == "*" or entry.finding in wanted:
                return entry
    return None


def read_audit(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def main(argv: List[str]) -> int:
    accepted = load_accepted(Path(argv[0]))
    used: set = set()
    new: List[str] = []
    checked_any = False
    unchecked_locks: List[str] = []
    for spec in argv[1:]:
        lock, json_path = spec.split("=", 1)
        data = read_audit(Path(json_path))
        if data is None:
            print(f"\n{lock}: KUNNE IKKE TJEKKES (pip-audit gav intet resultat; se ovenfor)")
            unchecked_locks.append(lock)
            continue
        deps = data.get("dependencies", [])
        skipped = [d for d in deps if d.get("skip_reason")]
        audited = [d for d in deps if not d.get("skip_reason")]
        findings: List[Tuple[str, str, dict]] = [
            (d["name"], d.get("version", "?"), v) for d in audited for v in d.get("vulns", [])
        ]
        n_new = 0
        lines = []
        for name, version, vuln in findings:
            ids = [vuln.get("id", "")] + list(vuln.get("aliases") or [])
            label = vuln.get("id", "?")
            cves = [a for a in vuln.get("aliases") or [] if a.startswith("CVE-")]
            if cves:
                label += f" ({', '.join(cves)})"
            fixed = ", ".join(vuln.get("fix_versions") or []) or "ingen rettet version"
            entry = match(accepted, name, version, ids)
            if entry is not None:
                used.add(entry)
                lines.append(f"  accepteret  {name} {version}  {label}  rettet i: {fixed}  [{entry.reason}]")
            else:
                n_new += 1
                text = " ".join((vuln.get("description") or "").split())[:160]
                lines.append(f"  NYT         {name} {version}  {label}  rettet i: {fixed}\n              {text}")
                new.append(f"{lock}: {name} {version} {label}")
        print(f"\n{lock}: {len(audited)} pakker tjekket, {len(findings)} fund "
              f"({len(findings) - n_new} accepteret, {n_new} nye), {len(skipped)} kunne ikke tjekkes")
        for line in lines:
            print(line)
        if skipped:
            names = ", ".join(f"{d['name']}" for d in skipped[:8]) + (" ..." if len(skipped) > 8 else "")
            print(f"  ADVARSEL: ikke tjekket: {names}")
            print(f"            ({skipped[0]['skip_reason']})")
        if audited:
            checked_any = True
        else:
            unchecked_locks.append(lock)

    if checked_any:
        for entry in accepted:
            if entry not in used:
                print(f"\n  bemærk: accepteret fund ikke set i dag: {entry.package}=={entry.version} "
                      f"{entry.finding} (linje {entry.line}); fjern linjen, hvis det er rettet")
    print()
    if new:
        print(f"FEJL: {len(new)} nye fund, der ikke står i {argv[0]}:")
        for item in new:
            print(f"  {item}")
        print("Opdatér pakken (scripts/lock.sh) eller acceptér fundet med begrundelse "
              "(docs/accepted-risks.txt og docs/security.md).")
        return 1
    if unchecked_locks and not checked_any:
        print("ADVARSEL: Afhængighedstjekket kunne IKKE udføres: PyPI's sårbarhedsdata svarede ikke "
              f"for {', '.join(unchecked_locks)}. Det betyder ikke, at der ingen fund er. Kør 'make audit' igen senere.")
        return 3
    if unchecked_locks:
        print(f"ADVARSEL: {', '.join(unchecked_locks)} kunne ikke tjekkes; resten har ingen nye fund.")
        return 0
    print("Ingen nye fund.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
