# dfdetect — every target sets itself up: `make setup` is idempotent and the others
# depend on it. Knobs: SCALE=smoke|cpu|paper, DATA=<store or dataset>, FACES=procedural|DIR,
# REPEATS=N, CROSS=<second dataset store>.

PYTHON_SYS ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
SCALE      ?= cpu
FACES      ?= procedural
SEED       ?= 0
DATA       ?=
CROSS      ?=
REPEATS    ?=
STAMP      := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 2
export MPLBACKEND ?= Agg

.PHONY: setup test reproduce-fusion grid-custom-cnn inception-unfreeze grid-sequence \
        reproduce-convlstm reproduce-pose reproduce-deepforense pose-env bench clean

setup: $(STAMP)

# Reinstall only when the requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml tools/dlib-shim/pyproject.toml
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -c "import tensorflow, keras, cv2, sklearn, face_recognition, dfdetect"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q tests

# Experiment knobs passed through to every experiment script.
EXP_ARGS = --scale $(SCALE) --faces $(FACES) --seed $(SEED) \
           $(if $(DATA),--data $(DATA)) $(if $(CROSS),--cross $(CROSS)) \
           $(if $(REPEATS),--repeats $(REPEATS))

reproduce-fusion: setup
	$(PY) experiments/p1_fusion.py $(EXP_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
