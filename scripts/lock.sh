#!/usr/bin/env bash
# Regenerates the lock files in locks/ (pip-compile --generate-hashes: every file of every pinned
# release on PyPI, so the locks hold for every platform PyPI has wheels for). Run it after changing
# requirements*.txt or constraints.txt, and commit the locks together with that change.
#
#   locks/rasa-py310.txt   requirements.txt       the Rasa runtime (Python 3.10): the `rasa` image
#   locks/dev-py310.txt    requirements-dev.txt   the same plus the test tools: .venv (scripts/setup.sh)
#   locks/app-py312.txt    requirements-app.txt   action server, web server, outbox (Python 3.12): the `app` image
#   locks/tools-py310.txt  requirements-tools.txt pip-tools, pip-audit, cyclonedx-bom (scripts/tools_venv.sh)
#
# The Rasa runtime keeps EXACTLY the versions in constraints.txt (the model and the tests depend on
# them); tests/test_supply_chain.py checks that the locks and constraints.txt agree. Existing pins
# are kept; to move one: scripts/lock.sh --upgrade-package NAME==VERSION (and update constraints.txt).
# Needs PyPI; about 8 minutes (TensorFlow has many files to hash).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(scripts/tools_venv.sh)
app_py=$(scripts/find_python_app.sh)
root="${AF_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/af-assistenten}"
# pip-compile must run on the Python the lock is for: a pip-tools venv on 3.12 for the app lock.
pt312="$root/pip-tools-py312-$(sha256sum locks/tools-py310.txt | cut -c1-12)"
if [ ! -x "$pt312/bin/pip-compile" ]; then
  rm -rf "$pt312"
  "$app_py" -m venv "$pt312"
  "$pt312/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r locks/tools-py310.txt \
    >"$root/pip-tools-py312-install.log" 2>&1 || { tail -n 15 "$root/pip-tools-py312-install.log" >&2; exit 1; }
fi
# The machine's own pip settings (extra indexes, find-links) must never end up in a lock.
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL
export CUSTOM_COMPILE_COMMAND="scripts/lock.sh"
opts=(--quiet --generate-hashes --allow-unsafe --no-emit-index-url --strip-extras)
echo "Låser Rasa-runtime (Python 3.10) ..."
"$tools/bin/pip-compile" "${opts[@]}" "$@" --constraint constraints.txt -o locks/rasa-py310.txt requirements.txt
echo "Låser udviklingsmiljøet .venv (Python 3.10) ..."
"$tools/bin/pip-compile" "${opts[@]}" "$@" --constraint constraints.txt -o locks/dev-py310.txt requirements-dev.txt
echo "Låser værktøjerne ..."
"$tools/bin/pip-compile" "${opts[@]}" "$@" -o locks/tools-py310.txt requirements-tools.txt
echo "Låser app-runtime (Python 3.12) ..."
"$pt312/bin/pip-compile" "${opts[@]}" "$@" -o locks/app-py312.txt requirements-app.txt
echo "Låsefilerne er opdateret; kør tests/test_supply_chain.py og commit dem."
