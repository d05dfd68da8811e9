"""Stage 02 split files on the real UADFV layout: person-disjoint, complete, reproducible."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.splits import SPLITS, read_split
from preprocessing.splits import (LeakageError, leakage_path, leakage_report, make_split, person_of,
                                  read_person_map, split_counts, write_split)

REPO = Path(__file__).resolve().parents[1]


def _all_frames(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.glob("*/frames/*/*.png")}


def test_person_of_rules(tmp_path):
    assert person_of("0007") == "0007"
    assert person_of("0007_fake") == "0007"
    assert person_of("0007_FAKE") == "0007"
    assert person_of("000_003", regex=r"^(?P<person>\d+)_") == "000"
    assert person_of("id12_v3", regex=r"(id\d+)") == "id12"
    assert person_of("clipA", mapping={"clipA": "alice"}) == "alice"
    with pytest.raises(ValueError, match="split.person_map"):
        person_of("clipB", mapping={"clipA": "alice"})
    with pytest.raises(ValueError, match="person_regex"):
        person_of("xyz", regex=r"\d+")
    csv = tmp_path / "map.csv"
    csv.write_text("video_id,person\nclipA,alice\nclipB,bob\n")
    assert read_person_map(csv) == {"clipA": "alice", "clipB": "bob"}
    (tmp_path / "bad.csv").write_text("video,who\na,b\n")
    with pytest.raises(ValueError, match="video_id,person"):
        read_person_map(tmp_path / "bad.csv")


@pytest.mark.parametrize("n,ratios,expected", [(49, (0.7, 0.15, 0.15), [34, 8, 7]), (10, (0.8, 0.1, 0.1), [8, 1, 1]),
                                               (3, (0.98, 0.01, 0.01), [1, 1, 1]), (7, (1, 0, 0), [7, 0, 0])])
def test_split_counts(n, ratios, expected):
    assert split_counts(n, ratios) == expected


def test_person_split_on_uadfv_is_disjoint_and_complete(uadfv_root, tmp_path):
    split = make_split(uadfv_root, unit="person", seed=1024)
    meta = split["meta"]
    assert meta["unit"] == "person" and meta["seed"] == 1024 and meta["leaky"] is False
    persons = {}
    seen: list[str] = []
    for s in SPLITS:
        for smp in read_split_from_dict(split, s, tmp_path):
            vid = smp.video_id
            p = vid[:-5] if vid.endswith("_fake") else vid   # independent statement of the UADFV rule
            assert persons.setdefault(p, s) == s, f"person {p} in {persons[p]} and {s}"
            assert smp.label == (1 if vid.endswith("_fake") else 0)
            seen.append(smp.path)
    assert len(persons) == 49
    assert sorted(seen) == sorted(_all_frames(uadfv_root))          # every frame exactly once
    assert len(seen) == 3099
    assert [meta["counts"][s]["persons"] for s in SPLITS] == [34, 8, 7]
    # each person's real and fake video travel together, so each split is video-balanced
    for s in SPLITS:
        assert meta["counts"][s]["videos_real"] == meta["counts"][s]["videos_fake"]
    assert meta["leakage"] == {"n_persons_shared": 0, "n_videos_shared": 0, "n_frames_shared": 0}


def read_split_from_dict(split, s, tmp_path):
    path = tmp_path / f"s_{s}.json"
    path.write_text(json.dumps(split))
    return read_split(path, s)


def test_frames_in_temporal_order(uadfv_root):
    split = make_split(uadfv_root, seed=3)
    entry = next(iter(split["UADFV"]["UADFV_Real"]["train"].values()))
    idx = [int(Path(f).stem) for f in entry["frames"]]
    assert idx == sorted(idx) and len(idx) > 1


def test_same_seed_same_file_other_seed_differs(uadfv_root, tmp_path):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    write_split(a, make_split(uadfv_root, seed=7))
    write_split(b, make_split(uadfv_root, seed=7))
    write_split(c, make_split(uadfv_root, seed=8))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    rep = json.loads(leakage_path(a).read_text())
    assert rep["n_persons_shared"] == 0 and set(rep["pairs"]) == {"train/val", "train/test", "val/test"}


def test_video_and_frame_units_report_their_leakage(uadfv_root):
    video = make_split(uadfv_root, unit="video", seed=1)
    rv = leakage_report(video)
    assert rv["n_videos_shared"] == 0 and rv["n_frames_shared"] == 0
    assert rv["n_persons_shared"] > 0 and video["meta"]["leaky"] is True    # real and fake of a person split up
    frame = make_split(uadfv_root, unit="frame", seed=1, ratios=(0.7, 0.15, 0.15))
    rf = leakage_report(frame)
    assert frame["meta"]["leaky"] is True and "warning" in frame["meta"]
    assert rf["n_frames_shared"] == 0 and rf["n_videos_shared"] > 90 and rf["n_persons_shared"] == 49
    c = frame["meta"]["counts"]
    total = sum(c[s]["frames_real"] + c[s]["frames_fake"] for s in SPLITS)
    assert total == 3099
    # stratified by label: each split's real share within one frame of the overall share (1548 / 3099)
    for s, r in zip(SPLITS, (0.7, 0.15, 0.15)):
        assert abs(c[s]["frames_real"] - 1548 * r) <= 1 and abs(c[s]["frames_fake"] - 1551 * r) <= 1


def test_leaking_person_split_is_refused(uadfv_root, tmp_path):
    split = make_split(uadfv_root, unit="person", seed=1)
    # move the fake video of one train person into test: the person is now in two splits
    real_train = next(iter(split["UADFV"]["UADFV_Real"]["train"]))
    fakes = split["UADFV"]["UADFV_Fake"]
    fakes["test"][real_train + "_fake"] = fakes["train"].pop(real_train + "_fake")
    out = tmp_path / "leaky.json"
    with pytest.raises(LeakageError, match=real_train):
        write_split(out, split)
    assert list(tmp_path.iterdir()) == []                    # nothing written


def test_bad_inputs(tmp_path, uadfv_root):
    with pytest.raises(ValueError, match="does not exist"):
        make_split(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no frames"):
        make_split(tmp_path / "empty")
    with pytest.raises(ValueError, match="split.unit"):
        make_split(uadfv_root, unit="clip")
    with pytest.raises(ValueError, match="split.ratios"):
        make_split(uadfv_root, ratios=(1.0,))   # two values (calib, test) are valid since issue 18


def test_stage_02_cli(uadfv_root, tmp_path):
    out = tmp_path / "split.json"
    cmd = [sys.executable, str(REPO / "preprocessing/02_make_split.py"), "--config", "configs/uadfv.yaml",
           "--dataset-root", str(uadfv_root), "--output", str(out), "--set", f"output_dir={tmp_path / 'o'}",
           "--set", "split.seed=5"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.is_file() and leakage_path(out).is_file()
    assert (tmp_path / "o/02_split/summary.json").is_file() and (tmp_path / "o/02_split/split_counts.png").is_file()
    # configs/uadfv.yaml has the four pools (split.ratios [0.45, 0.15, 0.25, 0.15])
    assert out.read_bytes() == _written(make_split(uadfv_root, seed=5, ratios=(0.45, 0.15, 0.25, 0.15)),
                                        tmp_path / "ref.json")
    bad = subprocess.run(cmd[:-2] + ["--set", "split.unit=clip"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "split.unit" in bad.stderr


def _written(split, path):
    write_split(path, split)
    return path.read_bytes()
