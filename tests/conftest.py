"""Shared fixtures. Real-data tests read UADFV from ../shared/data/UADFV beside the checkout (or
from $UADFV_ROOT); if it is missing they fail with a clear message rather than skip."""
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


DEMO_CONFIG = "configs/demo.yaml"


def run_repo_cmd(args, timeout=900):
    """``python ARGS`` from the repository root; returns (CompletedProcess, seconds)."""
    t0 = time.time()
    p = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return p, time.time() - t0


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One fresh demo run (every stage) per test session; yields (output_dir, overrides, stdout, seconds).
    Used by tests/test_robustness_e2e.py; test_e2e_demo.py's own ``demo`` fixture could be this one
    (``demo = demo_run``) so that a full test session runs the demo once."""
    out = tmp_path_factory.mktemp("demo_run") / "out"
    overrides = ["--set", f"output_dir={out}"]
    p, seconds = run_repo_cmd(["run_pipeline.py", "--config", DEMO_CONFIG, *overrides], timeout=1800)
    if p.returncode != 0:
        pytest.fail(f"demo run failed (exit {p.returncode}) after {seconds:.0f} s:\n{p.stdout[-3000:]}\n"
                    f"{p.stderr[-5000:]}")
    print(f"demo run: {seconds:.1f} s")
    return out, overrides, p.stdout, seconds
