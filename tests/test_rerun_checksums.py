"""Reruns lose nothing (issue 11, item 3): checksums of every stage folder before and after a failing run.

Stages 08-14 run through run_pipeline.py on the paper's SRM features. Then a config change makes
09-14 re-run, and a stage fails *at run time* (its work folder cannot be made: a plain file sits
where it would go -- the kind of failure no config check can foresee). Before the fix the runner
first deleted the folders of the stages it meant to re-run ("previous outputs removed (out of
date)"); now every folder of a stage that did not complete in that run is byte-identical, and a
stage that did complete was replaced as a whole.
"""
from __future__ import annotations

import hashlib

import pytest

import run_pipeline
from common.config import load_config
from common.stages import folder, work_dir
from preprocessing.splits import make_split, write_split
from slr_helpers import write_config

SLR = ("08", "09", "10", "11", "12", "13", "14")


def checksums(out):
    """{stage folder: {relative file: sha256}} of every stage folder (hidden files included)."""
    result = {}
    for sid in SLR:
        d = out / folder(sid)
        result[folder(sid)] = {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                               for p in sorted(d.rglob("*")) if p.is_file()} if d.is_dir() else None
    return result


@pytest.fixture(scope="module")
def done(tmp_path_factory, paper_features, uadfv_root):
    tmp = tmp_path_factory.mktemp("rerun")      # four person-disjoint pools: the sound protocol fits on calib
    write_split(tmp / "split.json", make_split(uadfv_root, unit="person", ratios=(0.45, 0.15, 0.25, 0.15), seed=0))
    cfg = write_config(tmp, paper_features, tmp / "split.json", "sound", video_level=False,
                       bandwidth={"scale": "std", "grid_min": 0.05, "grid_max": 2.0, "grid_n": 8, "n_folds": 3,
                                  "seed": "${seed}"}, bootstrap={"n": 50})
    assert run_pipeline.main(["--config", str(cfg), "--from", "08", "--to", "14"]) == 0
    return cfg, load_config(cfg).output_dir


@pytest.mark.slow
@pytest.mark.parametrize("failing", ["09", "10"])
def test_a_failed_run_leaves_every_earlier_output_byte_identical(done, failing, capfd):
    cfg, out = done
    before = checksums(out)
    assert all(before[folder(s)] for s in SLR)
    blocker = work_dir(out / folder(failing))
    blocker.write_text("not a folder")                # stage `failing` cannot create its work folder
    try:
        rc = run_pipeline.main(["--config", str(cfg), "--from", "08", "--to", "14", "--set", "slr.calibration=pav"])
    finally:
        blocker.unlink()
    captured = capfd.readouterr()
    assert rc != 0 and f"stage {folder(failing)} failed" in captured.err
    assert "previous outputs removed" not in captured.out
    after = checksums(out)
    completed = {"09"} if failing == "10" else set()  # 09 ran (and succeeded) before 10 failed
    for sid in SLR:
        if sid in completed:
            assert after[folder(sid)] is not None and after[folder(sid)] != before[folder(sid)]
        else:
            assert after[folder(sid)] == before[folder(sid)], f"{folder(sid)} changed in a failed run"
    # and the next run without the obstacle completes and is then up to date
    assert run_pipeline.main(["--config", str(cfg), "--from", "08", "--to", "14", "--set", "slr.calibration=pav"]) == 0
    assert run_pipeline.main(["--config", str(cfg), "--from", "08", "--to", "14", "--set", "slr.calibration=pav",
                              "--dry-run"]) == 0
    assert "would run" not in capfd.readouterr().out
    # restore the module's state for the other parameter
    assert run_pipeline.main(["--config", str(cfg), "--from", "08", "--to", "14"]) == 0
