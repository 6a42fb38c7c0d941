# cnnvit: `make report` and `make test` are all a fresh clone needs (the environment is built
# on first use). PROFILE=smoke|paper picks the parameter files; DATA_DIR sets data.root.
SHELL := /bin/bash
PROFILE ?= smoke
DATA_DIR ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
STUDIES := 01_cifar10_vit_vs_resnet
OUT := outputs/$(PROFILE)

.PHONY: env test report lab clean-smoke help
help:
	@echo "make report [PROFILE=smoke|paper] [DATA_DIR=...]  run the study notebooks into $(OUT)/ and render HTML"
	@echo "make test                                          run the test suite"
	@echo "make lab                                           JupyterLab with the project's environment"
	@echo "make env                                           build .venv with pinned versions"

env: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

test: env
	$(PY) -m pytest -q tests

report: env
	@mkdir -p $(OUT)
	@for s in $(STUDIES); do \
	  echo "== study $$s (profile $(PROFILE))"; \
	  $(PY) -m papermill notebooks/$$s.ipynb $(OUT)/$$s.ipynb --cwd . --log-output --no-progress-bar \
	    -p params_file params/$(PROFILE)/$$s.yaml $(if $(DATA_DIR),-p data_root $(DATA_DIR)) || exit 1; \
	  $(PY) -m nbconvert --to html --log-level WARN $(OUT)/$$s.ipynb || exit 1; \
	  echo "== wrote $(OUT)/$$s.html"; \
	done

lab: env
	$(VENV)/bin/jupyter lab --notebook-dir=.

clean-smoke:
	rm -rf outputs/smoke
