# AF-assistenten. The two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore::DeprecationWarning,ignore::PendingDeprecationWarning
# make run is the development stack unless the operator says otherwise.
AF_MODE ?= development

.PHONY: help setup model run test validate clean purge

help:
	@echo "make run    – starter AF-assistenten lokalt (installerer og træner først, hvis det behøves)"
	@echo "make test   – kører alle tests (installerer og træner først, hvis det behøves)"
	@echo "make model  – træner en ny model, hvis data, domæne eller config er ændret"
	@echo "make purge  – sletter samtaler ældre end AF_RETENTION_DAYS (ARGS=--dry-run viser kun antal)"

setup:
	@scripts/setup.sh

model: setup
	@$(PY) scripts/model.py ensure >/dev/null

run: model
	@AF_MODE=$(AF_MODE) $(PY) scripts/run.py "$$($(PY) scripts/model.py path)"

test: model
	@scripts/test.sh

validate: setup
	.venv/bin/rasa data validate --domain domain --data data --config config.yml

purge: setup
	@$(PY) -m scripts.purge $(ARGS)

clean:
	rm -rf models results test-output var/nlu-eval var/nlu-split
