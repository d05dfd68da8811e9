"""Shared fixtures. Real-data tests read UADFV from ../shared/data/UADFV beside the checkout (or
from $UADFV_ROOT), the MesoNet weights from ../shared/weights/mesonet (or $MESONET_ROOT); if they are
missing the tests fail with a clear message rather than skip."""
from __future__ import annotations

import os
import subprocess
import sys
import time
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


def mesonet_path() -> Path:
    """The MesoNet authors' published weights and test faces (../shared/weights/mesonet or $MESONET_ROOT)."""
    return Path(os.environ.get("MESONET_ROOT", REPO.parent / "shared" / "weights" / "mesonet")).resolve()


@pytest.fixture(scope="session")
def mesonet_root() -> Path:
    root = mesonet_path()
    if not (root / "weights" / "Meso4_DF.h5").is_file():
        pytest.fail(f"MesoNet weights not found at {root}: put ../shared beside the checkout or set MESONET_ROOT")
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
    on the tests of SLOW and on every test using the ``demo`` run. ``make test-fast`` leaves both out."""
    for item in items:
        if {"uadfv_root", "paper_features", "mesonet_root"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)
        if "demo" in getattr(item, "fixturenames", ()):        # a full demo run (minutes on CPU)
            item.add_marker(pytest.mark.slow)
        if item.nodeid in SLOW or item.nodeid.split("[")[0] in SLOW:
            item.add_marker(pytest.mark.slow)


DEMO_CONFIG = "configs/demo.yaml"


def run_repo_cmd(args, timeout=900):
    """``python ARGS`` from the repository root; returns (CompletedProcess, seconds)."""
    t0 = time.time()
    p = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return p, time.time() - t0


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """One fresh demo run (every stage) per test session; yields (output_dir, overrides, stdout, seconds).
    Shared by tests/test_e2e_demo.py, tests/test_robustness_e2e.py and tests/test_casework_demo.py."""
    out = tmp_path_factory.mktemp("demo_run") / "out"
    overrides = ["--set", f"output_dir={out}"]
    p, seconds = run_repo_cmd(["run_pipeline.py", "--config", DEMO_CONFIG, *overrides], timeout=1800)
    if p.returncode != 0:
        pytest.fail(f"demo run failed (exit {p.returncode}) after {seconds:.0f} s:\n{p.stdout[-3000:]}\n"
                    f"{p.stderr[-5000:]}")
    print(f"demo run: {seconds:.1f} s")
    return out, overrides, p.stdout, seconds
