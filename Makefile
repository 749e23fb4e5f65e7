# AF-assistenten. The two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2
# Rasa never calls home (a closed municipal network), and never prints its first-run notice.
export RASA_TELEMETRY_ENABLED := false
export PYTHONWARNINGS := ignore::DeprecationWarning,ignore::PendingDeprecationWarning
# make run is the development stack unless the operator says otherwise.
AF_MODE ?= development

.PHONY: help setup model run test validate clean purge bench review add retrain activate rollback status report

help:
	@echo "make run    – starter AF-assistenten lokalt (installerer og træner først, hvis det behøves)"
	@echo "make test   – kører alle tests (installerer og træner først, hvis det behøves)"
	@echo "make model  – træner en ny model, hvis data, domæne eller config er ændret"
	@echo "make review / add FILE=... / retrain / activate / rollback – trænerens løkke (docs/traening.md)"
	@echo "make report FROM=ÅÅÅÅ-MM-DD TO=ÅÅÅÅ-MM-DD – opfølgningsrapport (HTML og JSON)"
	@echo "make bench  – måler hastighed og hukommelse mod Rasa's demo-bot (docs/benchmarks.md)"
	@echo "make purge  – sletter samtaler ældre end AF_RETENTION_DAYS (ARGS=--dry-run viser kun antal)"

setup:
	@scripts/setup.sh

model: setup
	@$(PY) scripts/model.py ensure >/dev/null

# The model in service (make activate / rollback), else the one for the current data.
run: setup
	@m="$$($(PY) -m trainer path)"; [ -f "$$m" ] || m="$$($(PY) scripts/model.py ensure)"; \
	AF_MODE=$(AF_MODE) $(PY) scripts/run.py "$$m"

test: model
	@scripts/test.sh

validate: setup
	.venv/bin/rasa data validate --domain domain --data data --config config.yml

# The trainer's loop (docs/traening.md) and AF's follow-up figures.
review: setup
	@AF_MODE=$(AF_MODE) $(PY) -m trainer review $(if $(DAYS),--days $(DAYS))

add: setup
	@test -n "$(FILE)" || { echo "Brug: make add FILE=review/til-gennemgang-ÅÅÅÅ-MM-DD.csv"; exit 2; }
	@AF_MODE=$(AF_MODE) $(PY) -m trainer add "$(FILE)" $(if $(DRY),--dry-run)

retrain: setup
	@AF_MODE=$(AF_MODE) $(PY) -m trainer retrain

activate: setup
	@AF_MODE=$(AF_MODE) $(PY) -m trainer activate $(if $(FORCE),--force)

rollback: setup
	@AF_MODE=$(AF_MODE) $(PY) -m trainer rollback

status: setup
	@$(PY) -m trainer status

report: setup
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "Brug: make report FROM=2026-11-01 TO=2026-11-30"; exit 2; }
	@AF_MODE=$(AF_MODE) $(PY) -m trainer report --from "$(FROM)" --to "$(TO)"

# Speed and memory, measured against the demo bot (never part of make test; ~20 min).
bench: setup
	@$(PY) -m devtools.bench

purge: setup
	@AF_MODE=$(AF_MODE) $(PY) -m trainer purge $(ARGS)

clean:
	rm -rf models results test-output var/nlu-eval var/nlu-split

# Supply chain (docs/security.md, "Runtime og forsyningskæde"). Tools live in their own venv
# under ~/.cache/af-assistenten (scripts/tools_venv.sh), never in .venv.
.PHONY: audit sbom lock pin-images app-venv

# Known vulnerabilities in every lock; fails only on a finding not in docs/accepted-risks.txt.
audit:
	@scripts/audit.sh

# CycloneDX SBOM per image (results/sbom/) and the licence list docs/licenser.md.
sbom: setup
	@scripts/sbom.sh

# Regenerate the hashed locks in locks/ after changing requirements*.txt or constraints.txt.
lock:
	@scripts/lock.sh $(ARGS)

# Pin the Dockerfile's base images by digest (needs Docker and the registry).
pin-images:
	@scripts/pin_base_images.sh

# The Python 3.12 runtime of the action server, web server and outbox worker (prints its path).
app-venv:
	@scripts/app_venv.sh
