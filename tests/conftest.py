"""Shared fixtures. Real-data tests read UADFV from ../shared/data/UADFV beside the checkout (or
from $UADFV_ROOT); if it is missing they fail with a clear message rather than skip."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def uadfv_path() -> Path:
    return Path(os.environ.get("UADFV_ROOT", REPO.parent / "shared" / "data" / "UADFV")).resolve()


@pytest.fixture(scope="session")
def uadfv_root() -> Path:
    root = uadfv_path()
    if not (root / "real" / "frames").is_dir():
        pytest.fail(f"real UADFV data not found at {root}: put ../shared beside the checkout or set UADFV_ROOT")
    return root


@pytest.fixture(scope="session")
def paper_features(uadfv_root) -> Path:
    return uadfv_root / "paper_srm_features.npz"


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch CPU thread (small models: faster than threads contending for cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    """Every test that uses the real data gets the ``real_data`` marker (``make test-fast`` leaves them out)."""
    for item in items:
        if {"uadfv_root", "paper_features"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)
