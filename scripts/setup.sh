#!/usr/bin/env bash
# Creates .venv with Python 3.10 and installs the locked packages with hash checking
# (locks/dev-py310.txt, made by scripts/lock.sh from requirements*.txt and constraints.txt):
# pip refuses any file whose sha256 is not in the lock, and any package that is not in it.
# Re-runs only when the requirement or lock files change (stamp file in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp_src=$(cat requirements.txt requirements-dev.txt constraints.txt locks/dev-py310.txt package.json package-lock.json | sha256sum | cut -c1-16)
stamp=".venv/.installed-$stamp_src"
if [ -f "$stamp" ] && [ -x .venv/bin/python ]; then
  exit 0
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
  py=$(scripts/find_python.sh)
  echo "Opretter .venv med $py"
  rm -rf .venv
  "$py" -m venv .venv
fi
mkdir -p logs
echo "Installerer de låste pakker med kontrol af hashes (log: logs/pip-install.log) ..."
if ! .venv/bin/python -m pip install --disable-pip-version-check --require-hashes -r locks/dev-py310.txt >logs/pip-install.log 2>&1; then
  tail -n 30 logs/pip-install.log >&2
  echo "FEJL: pakkerne kunne ikke installeres, se logs/pip-install.log" >&2
  exit 1
fi

# The chat widget's socket.io client is served from our own server (no CDN).
if ! command -v npm >/dev/null 2>&1; then
  echo "npm mangler; installerer Node.js og npm fra Debians pakker ..."
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) >>logs/pip-install.log 2>&1
  fi
  command -v npm >/dev/null 2>&1 || { echo "FEJL: installér Node.js og npm (fx 'apt-get install nodejs npm')" >&2; exit 1; }
fi
echo "Installerer chat-widgettens JavaScript-pakker (npm ci) ..."
if ! npm ci --no-audit --no-fund --loglevel=error >logs/npm-install.log 2>&1; then
  tail -n 30 logs/npm-install.log >&2
  echo "FEJL: npm ci mislykkedes, se logs/npm-install.log" >&2
  exit 1
fi
rm -f .venv/.installed-*
touch "$stamp"
echo "Pakkerne er installeret."
