#!/usr/bin/env bash
# Prints the path of the supply-chain tools venv (pip-tools, pip-audit, cyclonedx-bom) and creates
# it first when needed: from locks/tools-py310.txt, with hash checking, in a cache folder outside
# the repo (never in .venv). A new lock gives a new folder, so an old one is never half updated.
# Exit 1 (with the reason on stderr) when the tools cannot be installed, e.g. PyPI is unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=locks/tools-py310.txt
key=$(sha256sum "$lock" | cut -c1-12)
root="${AF_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/af-assistenten}"
venv="$root/tools-$key"
mkdir -p "$root"
# One creator at a time (two test runs, or make audit beside make sbom).
exec 9>"$root/.tools.lock"
flock 9
if [ -f "$venv/.installed" ] && [ -x "$venv/bin/python" ]; then
  echo "$venv"
  exit 0
fi
py=$(scripts/find_python.sh)
rm -rf "$venv"
echo "Opretter værktøjsmiljøet til afhængighedstjek og SBOM: $venv ..." >&2
"$py" -m venv "$venv"
log="$root/tools-install.log"
if ! "$venv/bin/python" -m pip install --disable-pip-version-check --require-hashes -r "$lock" >"$log" 2>&1; then
  tail -n 15 "$log" >&2
  echo "FEJL: værktøjerne kunne ikke installeres (se $log)" >&2
  rm -rf "$venv"
  exit 1
fi
touch "$venv/.installed"
echo "$venv"
