"""Bad input to the SLR stages: each problem is a clear error naming the file and the problem, the
command exits with code 2, and no partial output is left behind (an earlier output stays intact)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from common.cli import call_main

from common.config import load_config
from common.features import FeatureDumpWriter
from common.io import InputError, write_csv
from slr import run_scores

from slr_helpers import load_script


def _good(directory, seed=0, n=40):
    """Four pools; per pool n // 5 persons, each with a real and a fake video of 5 frames."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "calib", "test"):
        labels = np.repeat([0, 1], n)
        person = [f"{split}{(i % n) // 5}" for i in range(2 * n)]
        write_csv(directory / f"{split}.csv", {"score": (rng.normal(size=2 * n) + 2 * (labels == 0)).tolist(),
                                               "label": labels.tolist(),
                                               "video_id": [f"{p}_{'rf'[lab]}" for p, lab in zip(person, labels)],
                                               "person_id": person})


def _edit(path, column, row, value):
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row - 1].split(",")
    cells[header.index(column)] = value
    lines[row - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def _all(path, column, value):
    lines = path.read_text().splitlines()
    k = lines[0].split(",").index(column)
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[k] = value
        out.append(",".join(cells))
    path.write_text("\n".join(out) + "\n")


def _drop_fakes(path):
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ln.split(",")[1] != "1"]) + "\n")


def _drop_column(path, column):
    lines = [ln.split(",") for ln in path.read_text().splitlines()]
    k = lines[0].index(column)
    path.write_text("\n".join(",".join(c for j, c in enumerate(row) if j != k) for row in lines) + "\n")


CASES = {
    "nan score": (lambda d: _edit(d / "val.csv", "score", 5, "nan"), r"val\.csv: row 5, column 'score' is nan"),
    "infinite score": (lambda d: _edit(d / "test.csv", "score", 9, "inf"), r"test\.csv: row 9, column 'score' is inf"),
    "no fake items": (lambda d: _drop_fakes(d / "test.csv"), r"test\.csv: no fake \(label 1, Hd\) items"),
    "all scores equal": (lambda d: _all(d / "train.csv", "score", "0.5"), r"train\.csv: all 80 scores are equal"),
    "missing column": (lambda d: _drop_column(d / "val.csv", "label"), r"val\.csv: missing column\(s\) \['label'\]"),
    "bad label": (lambda d: _edit(d / "train.csv", "label", 3, "2"), r"train\.csv: row 3, column 'label' is '2'"),
    "text score": (lambda d: _edit(d / "val.csv", "score", 4, "high"), r"val\.csv: row 4, column 'score': 'high'"),
    "missing file": (lambda d: (d / "test.csv").unlink(), r"test\.csv: score file not found"),
    "no calib pool": (lambda d: (d / "calib.csv").unlink(),
                      r"calib\.csv: score file not found; the sound protocol fits .* split\.ratios of 4 values"),
    # issue 10, bad input of the v2 protocol
    "calib with one class": (lambda d: _drop_fakes(d / "calib.csv"), r"calib\.csv: no fake \(label 1, Hd\) items"),
    "calib with one person": (lambda d: _all(d / "calib.csv", "person_id", "calib0"),
                              r"calib\.csv: rows 2-81: every item belongs to person 'calib0'.*split\.ratios"),
    "nan calib score": (lambda d: _edit(d / "calib.csv", "score", 7, "nan"), r"calib\.csv: row 7, column 'score' is nan"),
    "person in two pools": (lambda d: _replace(d / "test.csv", ",test0\n", ",calib0\n"),
                            r"test\.csv: row 2: person 'calib0' is also in pool 'calib'.*person-disjoint"),
    "video of two persons": (lambda d: _edit(d / "calib.csv", "person_id", 3, "calib7"),
                             r"calib\.csv: row 3: video 'calib0_r' has person_id 'calib7' but person 'calib0'.*"
                             r"fix the person_id column"),
}


def _replace(path, old, new):
    path.write_text(path.read_text().replace(old, new))


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_scores_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, capsys, case):
    damage, message = CASES[case]
    _good(tmp_path / "in")
    damage(tmp_path / "in")
    out = tmp_path / "out"
    rc = run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "temporary output left behind"


def test_failed_rerun_keeps_the_previous_output_intact(tmp_path, capsys):
    _good(tmp_path / "in")
    out = tmp_path / "out"
    assert run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(out), "--no-video-level",
                            "--bootstrap", "20"]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _edit(tmp_path / "in" / "test.csv", "score", 2, "nan")
    assert run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(out)]) == 2
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    # a folder holding somebody else's files is never replaced
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep")
    _good(tmp_path / "in")
    assert run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "other")]) == 2
    assert "holds other files" in capsys.readouterr().err
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep"


def test_feature_sizes_differing_across_splits_stop_stage_08(tmp_path):
    rng = np.random.default_rng(0)
    feats = tmp_path / "features"
    for split, dim in (("train", 16), ("val", 12), ("test", 16)):
        labels = np.array([0, 1] * 10)
        with FeatureDumpWriter(feats / split, 20) as w:
            w.write(rng.normal(size=(20, dim)), [f"{split}/{i}.png" for i in range(20)],
                    [f"{split}{i // 5}" for i in range(20)], labels, np.zeros(20))
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"seed: 1\noutput_dir: {tmp_path / 'out'}\nslr:\n  features_dir: {feats}\n"
                        f"  features_file: null\n  batch_size: 8\n")
    cfg = load_config(cfg_path)
    with pytest.raises(InputError, match=r"feature sizes differ across splits \(train .*: 16, val .*: 12"):
        call_main(load_script(8), cfg)
    assert not (tmp_path / "out" / "08_scores").exists()


def test_stage_11_without_stage_10_says_run_stage_10(tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"seed: 1\noutput_dir: {tmp_path / 'out'}\nslr:\n  protocol: sound\n")
    with pytest.raises(InputError, match="run stage 10 first"):
        call_main(load_script(11), load_config(cfg_path))
    assert not (tmp_path / "out" / "11_tippett").exists()


def test_bad_protocol_names_the_config_key(tmp_path):
    from common.config import ConfigError
    from slr.pipeline import Settings

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("seed: 1\noutput_dir: out\nslr:\n  protocol: fancy\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: config key 'slr\.protocol' must be one of sound, paper, got 'fancy'"):
        Settings.from_config(load_config(cfg_path))     # refused when the config is loaded


def test_too_few_training_scores_for_the_paper_cv_is_a_clear_error(tmp_path, capsys):
    _good(tmp_path / "in", n=6)       # the paper's 10-fold CV needs 10 scores per hypothesis
    rc = run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                          "--protocol", "paper", "--no-video-level"])
    err = capsys.readouterr().err
    assert rc == 2 and re.search(r"train\.csv: frame level, paper protocol: 10-fold .*at least 10", err), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["inside", "contains", "same"])
def test_output_folder_inside_or_holding_the_input_is_refused(tmp_path, capsys, where):
    _good(tmp_path / "in")
    out = {"inside": tmp_path / "in" / "out", "contains": tmp_path, "same": tmp_path / "in"}[where]
    before = sorted(p.name for p in (tmp_path / "in").iterdir())
    rc = run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert re.search(r"--output-dir .* (is inside|contains|is) the --scores-dir .*would delete the input", err), err
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == before


def test_stage_10_under_sound_without_a_calib_pool_says_how_to_make_one(tmp_path):
    _good(tmp_path / "scores")
    (tmp_path / "scores" / "calib.csv").unlink()
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"seed: 1\noutput_dir: {tmp_path / 'out'}\nslr:\n  protocol: sound\n"
                        f"  scores_dir: {tmp_path / 'scores'}\n")
    with pytest.raises(InputError, match=r"calib\.csv: score file not found \(slr\.protocol = sound, .*c\.yaml\); "
                                         r".*split\.ratios of 4 values"):
        call_main(load_script(10), load_config(cfg_path))
    assert not (tmp_path / "out" / "10_kde_lr").exists()
