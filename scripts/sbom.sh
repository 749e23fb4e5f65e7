#!/usr/bin/env bash
# make sbom: a CycloneDX SBOM (JSON) for each image, from the environment that has exactly the
# image's lock installed, and the licence list docs/licenser.md.
#   results/sbom/af-assistenten-rasa.cdx.json  Rasa runtime (Python 3.10): .venv less the test tools
#   results/sbom/af-assistenten-app.cdx.json   action server, web, outbox (Python 3.12): the app venv
# Tools (cyclonedx-py) come from their own venv (scripts/tools_venv.sh), never from .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/sbom
mkdir -p "$out"
tools=$(scripts/tools_venv.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
describe() {  # NAME PYTHON LOCK
  local name=$1 py=$2 lock=$3
  "$py" devtools/sbom_tools.py collect >"$tmp/$name.licences.json"
  "$tools/bin/cyclonedx-py" environment --output-reproducible --of JSON -o "$tmp/$name.raw.json" "$py" 2>"$tmp/$name.log" \
    || { cat "$tmp/$name.log" >&2; echo "FEJL: cyclonedx-py fejlede for $name" >&2; exit 1; }
  "$tools/bin/python" devtools/sbom_tools.py finish "$tmp/$name.raw.json" "$lock" "$tmp/$name.licences.json" \
    "af-assistenten-$name" "$out/af-assistenten-$name.cdx.json"
  cp "$tmp/$name.licences.json" "$out/af-assistenten-$name.licences.json"
  "$tools/bin/python" -c 'import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
sys.exit(f"FEJL: {sys.argv[1]} er ikke gyldig CycloneDX 1.6: {error}" if error else 0)' "$out/af-assistenten-$name.cdx.json"
}
echo "== SBOM (CycloneDX) og licenser"
describe rasa .venv/bin/python locks/rasa-py310.txt
app=$(scripts/app_venv.sh)
describe app "$app/bin/python" locks/app-py312.txt
"$tools/bin/python" devtools/sbom_tools.py markdown docs/licenser.md \
  "rasa=locks/rasa-py310.txt=$out/af-assistenten-rasa.licences.json" \
  "app=locks/app-py312.txt=$out/af-assistenten-app.licences.json"
