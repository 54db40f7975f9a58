# Bootstrap a virtual environment, build the addons' networks, run the service or the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup addons browser serve test lint bench

$(STAMP): pyproject.toml addons/kokoro-ja/pyproject.toml
	python3 -m venv $(VENV)
	# the CPU build of torch first: an unpinned torch would pull a CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	# Kokoro-82M: a plugin distribution of its own, installed as a third party's would be
	$(PY) -m pip install -q -e addons/kokoro-ja
	touch $@

setup: $(STAMP)

addons: $(STAMP)
	$(PY) addons/piper-joe/build.py
	$(VENV)/bin/voxstack addons compile piper-joe --profile fixed
	$(PY) addons/hibari/build.py
	$(PY) addons/legacy-ar/build.py
	$(PY) -m voxstack_kokoro_ja.build

serve: addons
	$(VENV)/bin/voxstack serve

# Debian's chromium for the demo page's browser tests: installed when missing and we are root with apt.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$CHROMIUM" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; \
	  else \
	    echo "make test needs Debian's chromium for the browser tests: run 'sudo apt-get install chromium' (or set CHROMIUM=/path/to/chromium)" >&2; \
	    exit 1; \
	  fi; }

test: addons browser
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: addons
	$(PY) bench/first_audio.py

# The container image (Containerfile), named as k8s/rayservice.yaml runs it: voxstack:<version>, with
# -gpu or -neuron for IMAGE_VARIANT=gpu|neuron. pip's index settings (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
# PIP_FIND_LINKS, PIP_TRUSTED_HOST) and CA bundle (PIP_CERT) go to the build (k8s/image.py); IMAGE_BASE
# replaces the base image; IMAGE_PLUGINS (pip requirements) installs plugin distributions a serve config names.
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_VARIANT ?= cpu
IMAGE ?= voxstack:$(IMAGE_VERSION)$(if $(filter-out cpu,$(IMAGE_VARIANT)),-$(IMAGE_VARIANT))

.PHONY: image image-test

image:
	python3 k8s/image.py build --tag $(IMAGE) --variant $(IMAGE_VARIANT) $(if $(IMAGE_PLUGINS),--plugins "$(IMAGE_PLUGINS)")

# As root: starts dockerd if none runs, builds the image (on a local Debian base if none can be pulled),
# runs it and synthesizes with every addon, with host networking and with no network at all.
image-test: $(STAMP)
	$(PY) k8s/image_test.py --tag $(IMAGE)
