#!/usr/bin/env bash
# Prints the path of a working Python 3.10 (Rasa 3.6 does not run on 3.11+).
# Looks on PATH first, then under pyenv. Exits 1 with a clear message if none is found.
set -u
candidates=()
command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for p in "$root"/versions/3.10*/bin/python3.10; do candidates+=("$p"); done
fi
for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do
  candidates+=("$p")
done
for p in "${candidates[@]}"; do
  if [ -x "$p" ] && "$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
    echo "$p"
    exit 0
  fi
done
echo "FEJL: Python 3.10 blev ikke fundet (Rasa 3.6 kræver Python 3.10)." >&2
echo "Installér den, fx med 'pyenv install 3.10.13' eller 'apt-get install python3.10', og prøv igen." >&2
exit 1
