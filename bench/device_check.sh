#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (the GPU image, or `make setup` then onnxruntime-gpu in place of onnxruntime):
# check that serve_configs/gpu.yaml's stages find CUDA, then serve it and the CPU config in turn and compare
# first audio and throughput at 1, 8 and 32 streams, then the fixed-shape profile's cross-stream batching.
# Each step stops at the first failure, with the message that says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
"$venv/bin/voxstack" backends serve_configs/gpu.yaml --check
"$venv/bin/python" -m bench.device_load --configs serve_configs/gpu.yaml serve_configs/local.yaml
"$venv/bin/python" -m bench.fixed_vs_dynamic --streams 1 8 32
