# Bootstrap a virtual environment, build the addons' networks, run the service or the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup addons serve test lint bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# the CPU build of torch first: an unpinned torch would pull a CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(STAMP)

addons: $(STAMP)
	$(PY) addons/piper-joe/build.py
	$(VENV)/bin/voxstack addons compile piper-joe --profile fixed
	$(PY) addons/hibari/build.py
	$(PY) addons/legacy-ar/build.py

serve: addons
	$(VENV)/bin/voxstack serve

test: addons
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: addons
	$(PY) bench/first_audio.py
