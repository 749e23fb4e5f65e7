#!/usr/bin/env bash
# Prints the path of a venv with the app runtime (action server, web server, outbox worker) on
# Python 3.12, and creates it first when needed: from locks/app-py312.txt with hash checking, in a
# cache folder outside the repo (never .venv). A new lock gives a new folder.
# Exit 1 (reason on stderr) when Python 3.12 is missing or the packages cannot be installed;
# exit 3 when only the interpreter is missing, so a test can tell the two apart.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=locks/app-py312.txt
key=$(sha256sum "$lock" | cut -c1-12)
root="${AF_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/af-assistenten}"
venv="$root/app-py312-$key"
mkdir -p "$root"
# One creator at a time (two test runs, or make audit beside make sbom).
exec 9>"$root/.app.lock"
flock 9
if [ -f "$venv/.installed" ] && [ -x "$venv/bin/python" ]; then
  echo "$venv"
  exit 0
fi
py=$(scripts/find_python_app.sh) || exit 3
rm -rf "$venv"
echo "Opretter app-miljøet (Python 3.12, $lock): $venv ..." >&2
"$py" -m venv "$venv"
log="$root/app-install.log"
if ! "$venv/bin/python" -m pip install --disable-pip-version-check --require-hashes -r "$lock" >"$log" 2>&1; then
  tail -n 15 "$log" >&2
  echo "FEJL: app-pakkerne kunne ikke installeres (se $log)" >&2
  rm -rf "$venv"
  exit 1
fi
touch "$venv/.installed"
echo "$venv"
