"""Helpers for make sbom (scripts/sbom.sh). Standard library only.

  sbom_tools.py collect                     (run by the Python of the environment to describe)
      prints JSON: every installed distribution with version and declared licence
  sbom_tools.py finish RAW LOCK LICENCES NAME OUT
      keeps only the components in LOCK (the image's lock; drops test tools and pip), checks that
      the environment has exactly the locked versions, adds licences the SBOM generator missed,
      names the main component, writes OUT
  sbom_tools.py markdown OUT IMAGE=LOCK=LICENCES [...]
      writes docs/licenser.md: the licence of every package shipped in each image, and a Danish
      summary of the licences that ask for something (copyleft, none declared)
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(path: Path) -> Dict[str, Tuple[str, str]]:
    """normalised name -> (name as written, version) for every pin in a pip-compile lock."""
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip().rstrip("\\").strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split(";", 1)[0].split("==", 1)
            pins[norm(name)] = (name.strip(), version.strip())
    return pins


# -- collect -------------------------------------------------------------------------------
def collect() -> None:
    from importlib import metadata

    out = []
    for dist in metadata.distributions():
        meta = dist.metadata
        classifiers = [c.split("::", 1)[1].strip() for c in meta.get_all("Classifier") or []
                       if c.startswith("License ::")]
        out.append({
            "name": meta["Name"],
            "version": dist.version,
            "expression": (meta.get("License-Expression") or "").strip(),
            "license": " ".join((meta.get("License") or "").split())[:200],
            "classifiers": classifiers,
        })
    json.dump(sorted(out, key=lambda d: norm(d["name"])), sys.stdout, indent=1)


def licence_text(entry: dict) -> str:
    """One short licence statement from a package's metadata."""
    if entry.get("expression"):
        return entry["expression"]
    license_field = entry.get("license") or ""
    if license_field and license_field.upper() not in ("UNKNOWN", "NONE") and len(license_field) <= 80:
        return license_field
    classifiers = [c.replace("OSI Approved :: ", "") for c in entry.get("classifiers") or []]
    classifiers = [c for c in classifiers if c != "OSI Approved"]
    if classifiers:
        return "; ".join(classifiers)
    if license_field:
        return license_field[:80] + " ..."
    return ""


# -- finish --------------------------------------------------------------------------------
def finish(raw: Path, lock: Path, licences: Path, name: str, out: Path) -> None:
    bom = json.loads(raw.read_text(encoding="utf-8"))
    pins = lock_pins(lock)
    lic = {norm(e["name"]): e for e in json.loads(licences.read_text(encoding="utf-8"))}
    kept, dropped_refs, seen = [], set(), {}
    for comp in bom.get("components", []):
        key = norm(comp["name"])
        if key not in pins:
            dropped_refs.add(comp.get("bom-ref"))
            continue
        seen[key] = comp["version"]
        if not comp.get("licenses"):
            text = licence_text(lic.get(key, {}))
            if text:
                comp["licenses"] = [{"license": {"name": text, "acknowledgement": "declared"}}]
        kept.append(comp)
    wrong = [f"{pins[k][0]}: låst {pins[k][1]}, installeret {seen.get(k, 'mangler')}"
             for k in pins if seen.get(k) != pins[k][1]]
    if wrong:
        raise SystemExit("FEJL: miljøet passer ikke med " + str(lock) + " (kør make setup):\n  " + "\n  ".join(wrong))
    bom["components"] = kept
    deps = []
    for dep in bom.get("dependencies", []):
        if dep.get("ref") in dropped_refs:
            continue
        dep["dependsOn"] = [d for d in dep.get("dependsOn", []) if d not in dropped_refs]
        deps.append(dep)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    root_ref = f"{name}@{commit}"
    bom.setdefault("metadata", {})["component"] = {
        "type": "application", "bom-ref": root_ref, "name": name, "version": commit,
        "description": f"AF-assistenten, image '{name}' (lock {lock})",
    }
    deps.append({"ref": root_ref, "dependsOn": sorted(c["bom-ref"] for c in kept if c.get("bom-ref"))})
    bom["dependencies"] = deps
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(bom, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{out}: {len(kept)} komponenter ({out.stat().st_size // 1024} kB)")


# -- markdown ------------------------------------------------------------------------------
COPYLEFT = re.compile(r"\b(A?GPL|LGPL|GNU|MPL|Mozilla|EPL|Eclipse|CDDL|EUPL|OSL)\b", re.I)

# What each noteworthy licence asks of us, in plain Danish (checked by hand for these packages).
NOTES = {
    "certifi": "MPL-2.0: listen over rodcertifikater. Vi ændrer ikke i filerne; MPL kræver kun, at ændrede MPL-filer gøres tilgængelige.",
    "tqdm": "MPL-2.0 og MIT: fremdriftsbjælke, uændret.",
    "bidict": "MPL-2.0: bruges af python-socketio, uændret.",
    "hypothesis": "MPL-2.0: kun testværktøj; leveres ikke i noget image.",
    "psycopg2-binary": "LGPL med undtagelser: PostgreSQL-driveren, dynamisk linket og uændret. LGPL kræver, at modtageren kan udskifte biblioteket; det kan man i et Python-miljø. Hjulet indeholder også libpq og OpenSSL (egne licenser).",
    "chardet": "LGPL-2.1: uændret Python-kode.",
}


def markdown(out: Path, specs: List[str]) -> None:
    images = []
    for spec in specs:
        image, lock, licences = spec.split("=", 2)
        pins = lock_pins(Path(lock))
        lic = {norm(e["name"]): e for e in json.loads(Path(licences).read_text(encoding="utf-8"))}
        rows = []
        for key in sorted(pins):
            name, version = pins[key]
            rows.append((name, version, licence_text(lic.get(key, {}))))
        images.append((image, lock, rows))

    gpl = sorted({f"{n} {v}" for _, _, rows in images for n, v, t in rows
                  if re.search(r"\bA?GPL", t) or (re.search(r"General Public License", t)
                                                  and not re.search(r"Lesser|Library", t))})
    gpl_sentence = ("Ingen pakke i images er under GPL eller AGPL." if not gpl else
                    "GPL/AGPL (skal vurderes af kommunens jurister): " + ", ".join(gpl) + ".")
    lines = [
        "# Licenser for det, der leveres",
        "",
        "Genereret af `make sbom` (devtools/sbom_tools.py) ud fra pakkernes egne metadata i de låste",
        "miljøer; ret ikke i hånden. SBOM'erne (CycloneDX) skrives til `results/sbom/`.",
        "",
        "## Sammenfatning",
        "",
        "Langt de fleste pakker har tilladende licenser (MIT, BSD, Apache-2.0, PSF, ISC). De, der",
        "kræver noget eller ikke angiver en licens, står herunder. " + gpl_sentence,
        "Vi ændrer ikke i nogen tredjepartspakke, og vi leverer images kun internt i",
        "kommunen; de vilkår, der udløses ved videregivelse (kildekode til ændrede filer, mulighed for",
        "at udskifte et LGPL-bibliotek), er opfyldt, fordi pakkerne er uændrede og kan hentes i præcis",
        "de låste versioner.",
        "",
        "Bemærk også: NumPy- og SciPy-hjulene indeholder OpenBLAS (BSD), GCC's Fortran-runtime",
        "libgfortran (GPL-3 med GCC Runtime Library Exception, som tillader brug uden copyleft) og",
        "libquadmath (LGPL-2.1, dynamisk linket og uændret), og TensorFlow-hjulet",
        "indeholder en række tredjepartsbiblioteker under deres egne tilladende licenser.",
        "",
    ]
    flagged = []
    for image, lock, rows in images:
        for name, version, text in rows:
            if COPYLEFT.search(text) or not text:
                flagged.append((norm(name), name, version, text or "ingen licens angivet i pakkens metadata", image))
    merged: Dict[Tuple[str, str], dict] = {}
    for key, name, version, text, image in flagged:
        item = merged.setdefault((key, version), {"name": name, "text": text, "images": []})
        item["images"].append(image)
    lines += ["| pakke | version | licens | image | hvad det betyder |", "|---|---|---|---|---|"]
    for (key, version), item in sorted(merged.items()):
        note = NOTES.get(key, "Ingen licens i metadata: se pakkens LICENSE-fil i det installerede miljø." if item["text"].startswith("ingen") else "")
        lines.append(f"| {item['name']} | {version} | {item['text']} | {', '.join(item['images'])} | {note} |")
    lines.append("")
    for image, lock, rows in images:
        lines += [f"## Image `{image}` ({lock}, {len(rows)} pakker)", "", "| pakke | version | licens |", "|---|---|---|"]
        lines += [f"| {n} | {v} | {t or '(ingen angivet)'} |" for n, v, t in rows]
        lines.append("")
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"{out}: {sum(len(r) for _, _, r in images)} pakker i {len(images)} images")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "collect":
        collect()
    elif command == "finish":
        finish(Path(args[0]), Path(args[1]), Path(args[2]), args[3], Path(args[4]))
    elif command == "markdown":
        markdown(Path(args[0]), args[1:])
    else:
        raise SystemExit(__doc__)
