"""Test-wide settings: offline, a fresh PREFECT_HOME per test run, Prefect's local mode.

Set before anything imports prefect or transformers, which read these at import time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_PREFECT_HOME = tempfile.mkdtemp(prefix="videorft-test-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.pop("PREFECT_API_URL", None)  # local (ephemeral) mode unless a test starts a server
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["DO_NOT_TRACK"] = "1"
for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[var] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("HF_HOME", str(Path(_PREFECT_HOME) / "hf-home"))

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small synthetic dataset (real encoded videos + annotations), shared by the session."""
    from curation.sources.synthetic import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, 24, seed=7)
    return out


@pytest.fixture(scope="session")
def sim_base_url(synth_dir):
    """The simulated OpenAI-compatible endpoint, answering for `synth_dir`'s samples."""
    from sim_endpoint.server import SimConfig, running_sim_server

    cfg = SimConfig(annotations=[str(synth_dir / "annotations.jsonl")], latency_s=0.0, jitter_s=0.0)
    with running_sim_server(cfg) as base_url:
        yield base_url
