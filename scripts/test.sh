#!/usr/bin/env bash
# Everything `make test` runs, in order. Stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD"
export RASA_TELEMETRY_ENABLED=false  # validate, test and train: no calls home
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
# The deployment checks (tests/test_deploy_config.py) let Debian's docker-compose and haproxy
# read docker-compose.yml and deploy/haproxy.cfg. Without them those two tests are skipped.
missing=""
command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ]; then
  echo "Installerer$missing til deployment-testene (apt) ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) >logs/apt-deploy.log 2>&1 \
    || echo "ADVARSEL:$missing kunne ikke installeres; de to deployment-tests springes over (logs/apt-deploy.log)" >&2
fi
mkdir -p results

echo "== 1/4 rasa data validate"
$RASA data validate --domain domain --data data --config config.yml --quiet

echo "== 2/4 pytest"
$PY -m pytest -q tests

echo "== 3/4 Rasa test stories"
$RASA test core --model "$model" --stories tests/stories --fail-on-prediction-errors --out results/stories --quiet

echo "== 4/4 NLU evaluation on the held-out split, and form retrieval through the bot's own path"
$PY devtools/nlu_eval.py
# (development mode: it reads only the profile; production would ask for every secret)
AF_MODE=development $PY devtools/eval_forms.py --model "$model"
