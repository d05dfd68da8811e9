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


# Unit tests without the dataset that still take many seconds on a CPU (full-size detectors, command
# runs): marked ``slow`` here, in one list, so ``make test-fast`` stays under 90 s. Node ids without
# parameters match every parameter set.
SLOW = {
    "tests/test_detectors_models.py::test_forward_backward[xception]",
    "tests/test_detectors_models.py::test_forward_backward[efficientnet_b4]",
    "tests/test_detectors_models.py::test_forward_backward[resnet34]",
    "tests/test_detectors_srm.py::test_srm_detector_forward_backward_at_256",
    "tests/test_detectors_srm.py::test_srm_checkpoint_round_trip",
    "tests/test_slr_stages.py::test_run_scores_command_writes_the_contract",
    "tests/test_detectors_weights.py::test_checkpoint_round_trip_gives_identical_outputs[xception-options2-64]",
    "tests/test_detectors_weights.py::test_checkpoint_round_trip_gives_identical_outputs[efficientnet-options3-64]",
    "tests/test_detectors_weights.py::test_checkpoint_round_trip_gives_identical_outputs[resnet34-options4-64]",
    "tests/test_video_lstm_models.py::test_lstm_output_is_deterministic[efficientnet_lstm-opts1-2]",
}


def pytest_collection_modifyitems(config, items):
    """``real_data`` on every test using the real data (uadfv_root / paper_features fixtures); ``slow``
    on the tests of SLOW. ``make test-fast`` leaves both out."""
    for item in items:
        if {"uadfv_root", "paper_features"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)
        if item.nodeid in SLOW or item.nodeid.split("[")[0] in SLOW:
            item.add_marker(pytest.mark.slow)
