#!/usr/bin/env bash
# Everything `make test` runs, in order. Stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD"
PY=.venv/bin/python
RASA=.venv/bin/rasa
model=$($PY scripts/model.py ensure)

# The browser tests drive Debian's Chromium (never a downloaded browser).
if [ ! -x /usr/bin/chromium ]; then
  echo "Installerer Chromium til browsertestene (apt) ..."
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >logs/apt-chromium.log 2>&1 \
      || { tail -n 20 logs/apt-chromium.log >&2; echo "FEJL: Chromium kunne ikke installeres" >&2; exit 1; }
  else
    echo "FEJL: /usr/bin/chromium mangler; installér Debians pakke 'chromium'" >&2; exit 1
  fi
fi
mkdir -p results

echo "== 1/4 rasa data validate"
$RASA data validate --domain domain --data data --config config.yml --quiet

echo "== 2/4 pytest"
$PY -m pytest -q tests

echo "== 3/4 Rasa test stories"
$RASA test core --model "$model" --stories tests/stories --fail-on-prediction-errors --out results/stories --quiet

echo "== 4/4 NLU evaluation on the held-out split, and form retrieval through the bot's own path"
$PY scripts/nlu_eval.py
$PY scripts/eval_forms.py --model "$model"
