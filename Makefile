# cnnvit: `make report` and `make test` are all a fresh clone needs (the environment is built
# on first use); `make lab` opens the notebooks in JupyterLab. PROFILE=smoke|laptop|paper picks
# the parameter files (params/<profile>/): smoke on generated data, laptop and paper on the real
# data sets that `make data` fetches; DATA_DIR is the folder holding them (cifar10/, ...);
# STUDIES=01,03 picks studies; FORCE=1 re-executes unchanged ones.
SHELL := /bin/bash
PROFILE ?= smoke
DATA_DIR ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
STUDIES ?=
FORCE ?=
DATASETS ?= studies
OUT := outputs/$(PROFILE)
comma := ,

.PHONY: env test report data lab clean-smoke help gpu-check paper-dry-run
help:
	@echo "make report [PROFILE=smoke|laptop|paper] [DATA_DIR=...] [STUDIES=01,03] [FORCE=1]"
	@echo "                                                   run the study notebooks, write outputs/<profile>/report.html and .pdf"
	@echo "make data [DATA_DIR=...] [DATASETS=cifar10,...]  download, verify and unpack the real data sets (default: those the studies read)"
	@echo "make test                                          run the test suite"
	@echo "make gpu-check [DEVICE=cuda|cpu] [DATA_DIR=...] [BUDGET=s]  check a GPU machine: CUDA paths, syncs, throughput (outputs/gpu-check/)"
	@echo "make paper-dry-run [DATA_DIR=...] [STUDIES=01,03]   two optimizer steps of every paper run on the CPU, in a temporary folder"
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
	$(PY) -m cnnvit report --profile $(PROFILE) $(if $(STUDIES),--studies "$(STUDIES)") \
	  $(if $(DATA_DIR),--data-dir "$(DATA_DIR)") $(if $(filter 1 yes true,$(FORCE)),--force)

data: env
	$(PY) -m cnnvit data fetch $(subst $(comma), ,$(DATASETS)) $(if $(DATA_DIR),--to "$(DATA_DIR)")

lab: env
	$(VENV)/bin/jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root)

clean-smoke:
	rm -rf outputs/smoke

# one prepared check of a GPU machine (benchmarks/gpu_check.py; core dependencies only: a bare
# GPU machine runs it with its own python, PYTHON=python3 and no .venv)
DEVICE ?= cuda
gpu-check:
	PYTHONPATH=lib $(if $(wildcard $(PY)),$(PY),$(PYTHON)) benchmarks/gpu_check.py --device $(DEVICE) $(GPU_CHECK_ARGS) \
	  $(if $(DATA_DIR),--data-dir "$(DATA_DIR)") $(if $(BUDGET),--budget $(BUDGET)) --out outputs/gpu-check

# every run of the paper profile (its first seed) at its real size and input resolution, two
# optimizer steps on the CPU in a temporary folder (cnnvit study --dry-run; a stand-in where a data
# set is absent from DATA_DIR, random init for hub weights): one line per run; every study file is
# tried, and the target fails if any run failed
PAPER_PARAMS = $(if $(STUDIES),$(foreach s,$(subst $(comma), ,$(STUDIES)),$(wildcard params/paper/$(s)*.yaml)),$(wildcard params/paper/*.yaml))
paper-dry-run: env
	@test -n "$(PAPER_PARAMS)" || { echo "error: no params/paper/ file matches STUDIES=$(STUDIES)" >&2; exit 2; }
	@rc=0; for f in $(PAPER_PARAMS); do \
	  $(PY) -m cnnvit -q study "$$f" --dry-run $(if $(DATA_DIR),--data-dir "$(DATA_DIR)") || rc=1; \
	done; exit $$rc
