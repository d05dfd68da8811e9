"""The five failures of issue 11, each as a regression test (each failed on the code before the fix).

1. a typo'd key (``--set slrr.calibration=pav`` / ``slr.calibrashun``) ran silently -> exit 2 naming it;
2. a run failing in stage 10 first deleted the outputs of the stages it meant to re-run (see also
   tests/test_rerun_checksums.py for the checksums of every stage folder);
3. ``run_scores`` with its scores inside the output folder deleted the input scores;
4. stage 01 resumed by file name (tests/test_preprocessing_crop.py::test_a_replaced_source_... );
5. the numbered scripts used configs/demo.yaml without saying so, and 01's output did not say which
   config or values were used.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import run_pipeline
from common.config import REPO_ROOT
from common.io import write_csv
from slr import run_scores


def write_score_csvs(directory, n=40, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "calib", "test"):
        labels = np.repeat([0, 1], n)
        write_csv(directory / f"{split}.csv", {"score": (rng.normal(size=2 * n) + 2 * (labels == 0)).tolist(),
                                               "label": labels.tolist()})


def test_typo_in_set_is_exit_2_naming_the_key_and_the_closest_one(capsys):
    for typo, close in (("slrr.calibration", "slr.calibration"), ("slr.calibrashun", "slr.calibration")):
        rc = run_pipeline.main(["--config", "configs/demo.yaml", "--set", f"{typo}=pav", "--dry-run"])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert f"unknown config key '{typo}'" in err and f"did you mean '{close}'?" in err
        assert "configs/demo.yaml" in err


def test_typo_in_a_config_file_names_file_and_key(tmp_path, capsys):
    p = tmp_path / "mine.yaml"
    p.write_text("base: " + str(REPO_ROOT / "configs" / "demo.yaml") + "\nslr:\n  calibrashun: pav\n")
    rc = run_pipeline.main(["--config", str(p), "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2 and str(p) in err and "'slr.calibrashun'" in err and "did you mean 'slr.calibration'?" in err


def test_out_of_range_value_is_refused_at_load(capsys):
    rc = run_pipeline.main(["--config", "configs/demo.yaml", "--set", "slr.bandwidth.grid_n=-5", "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2 and "'slr.bandwidth.grid_n' must be an integer, >= 2, got -5" in err


def test_run_scores_refuses_an_output_folder_around_or_inside_its_input(tmp_path, capsys):
    out = tmp_path / "OUT"
    write_score_csvs(tmp_path / "first")
    assert run_scores.main(["--scores-dir", str(tmp_path / "first"), "--output-dir", str(out), "--no-video-level"]) == 0
    scores = out / "myscores"                     # scores kept inside an earlier run_scores output (the issue)
    write_score_csvs(scores, seed=1)
    before = {p.name: p.read_bytes() for p in scores.iterdir()}
    for o, s in ((out, scores), (scores / "sub", scores), (scores, scores)):
        assert run_scores.main(["--scores-dir", str(s), "--output-dir", str(o)]) == 2
        assert "replacing it would delete the input scores" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in scores.iterdir()} == before


def _script(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_default_config_is_announced_and_print_config_shows_origins(tmp_path):
    r = _script("slr/11_tippett.py", "--print-config")
    assert r.returncode == 0, r.stderr
    assert "no --config given: using configs/demo.yaml" in r.stderr
    lines = {line.split("=")[0].strip(): line for line in r.stdout.splitlines() if "=" in line}
    assert lines["preprocessing.frames_per_video"].endswith("# file configs/demo.yaml")
    assert "= 8" in lines["preprocessing.frames_per_video"]
    r = _script("run_pipeline.py", "--config", "configs/uadfv_sbi.yaml", "--print-config", "--set", "seed=5")
    assert r.returncode == 0, r.stderr
    lines = {line.split("=")[0].strip(): line for line in r.stdout.splitlines() if "=" in line}
    assert lines["seed"].endswith("# --set") and "= 5" in lines["seed"]
    assert lines["training.data_mode"].endswith("# file configs/uadfv_sbi.yaml")
    assert lines["split.person_map"].endswith("# base configs/uadfv.yaml")
    assert lines["slr.bootstrap.n"].endswith("# default") and lines["model.input_size"].endswith("# default")


@pytest.mark.slow
def test_stage_01_output_says_which_config_and_values(uadfv_root, tmp_path):
    from test_preprocessing_crop import EXT, encode_video
    inp = tmp_path / "in"
    encode_video(uadfv_root / "real" / "frames" / "0012", inp / "real" / f"0012{EXT}", n=12)
    r = _script("preprocessing/01_crop_faces.py", "--input", str(inp), "--output", str(tmp_path / "crops"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no --config given: using configs/demo.yaml" in r.stderr
    assert "config: configs/demo.yaml" in r.stderr                      # the stage logs the config it uses
    info = json.loads((tmp_path / "crops" / "summary.json").read_text())
    assert info["settings"]["frames_per_video"] == 8 and info["config"]["file"] == "configs/demo.yaml"
