#!/usr/bin/env bash
# Prints the path of the Python for the action server, web server and outbox worker outside the
# Rasa image: Python 3.12 (supported until October 2028), or AF_APP_PYTHON when set.
# Looks on PATH first, then under pyenv. Exits 1 with a clear message if none is found.
set -u
want="3.12"
candidates=()
[ -n "${AF_APP_PYTHON:-}" ] && candidates+=("$AF_APP_PYTHON")
command -v "python$want" >/dev/null 2>&1 && candidates+=("$(command -v "python$want")")
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for p in "$root"/versions/$want*/bin/python$want; do candidates+=("$p"); done
fi
for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/$want*/bin/python$want /usr/local/bin/python$want /usr/bin/python$want; do
  candidates+=("$p")
done
for p in "${candidates[@]}"; do
  if [ -x "$p" ] && "$p" -c "import sys; assert sys.version_info[:2] == (${want/./, })" >/dev/null 2>&1; then
    echo "$p"
    exit 0
  fi
done
echo "FEJL: Python $want blev ikke fundet (til action-server, webserver og udbakke uden for Rasa-imaget)." >&2
echo "Installér den, fx med 'pyenv install $want' eller 'apt-get install python$want', eller sæt AF_APP_PYTHON." >&2
exit 1
