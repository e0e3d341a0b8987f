"""Fixtures shared by the training tests: tiny offline models, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory) -> Path:
    """A tiny random SigLIP checkpoint folder (~54k parameters), loadable like the real one."""
    from training.tiny_siglip import build_tiny_siglip

    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))
