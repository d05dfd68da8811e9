"""Pools that are people (issue 18 item 4): UADFV's 49 source videos are 31 identities
(``identities.json``, for ``split.person_map``). Stage 02 with the map keeps every identity in one pool;
a split made by source video shares identities between pools, which the leakage check sees and
stage 02's writer refuses."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from common.config import REPO_ROOT, load_config
from preprocessing.splits import (LeakageError, leakage_report, make_split, person_function, read_person_map,
                                  write_split)

RATIOS = (0.45, 0.15, 0.25, 0.15)


def _pool_of(split: dict) -> dict:
    return {vid: pool for ds, by_label in split.items() if ds != "meta"
            for by_pool in by_label.values() for pool, videos in by_pool.items() for vid in videos}


def test_uadfv_config_splits_by_identity():
    cfg = load_config(REPO_ROOT / "configs" / "uadfv.yaml")
    assert cfg.get("split.person_map") == "../shared/data/UADFV/identities.json"
    assert load_config(REPO_ROOT / "configs" / "demo.yaml").get("split.person_map") is None


def test_stage_02_keeps_every_identity_in_one_pool(uadfv_root, tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "preprocessing/02_make_split.py", "--config", "configs/uadfv.yaml",
                        "--set", f"dataset.root={uadfv_root}", "--set", f"output_dir={out}",
                        "--set", f"split.person_map={uadfv_root / 'identities.json'}", "--set", "seed=0"],
                       cwd=REPO_ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    split = json.loads((out / "02_split" / "split.json").read_text())
    mapping = read_person_map(uadfv_root / "identities.json")
    assert split["meta"]["person_rule"] == "mapping"
    assert set(split["meta"]["persons"].values()) == set(mapping.values()) and len(set(mapping.values())) == 31
    leak = json.loads((out / "02_split" / "split_leakage.json").read_text())
    assert len(leak["pairs"]) == 6 and all(not e["persons"] for e in leak["pairs"].values())
    # the politician of 11 source videos: his 22 videos (real and fake) all sit in one pool
    pool_of = _pool_of(split)
    his = [v for v, p in mapping.items() if p == mapping["0000"]]
    assert len(his) == 22 and len({pool_of[v] for v in his}) == 1
    counts = split["meta"]["counts"]
    assert sum(c["persons"] for c in counts.values()) == 31


def test_a_split_by_source_video_leaks_identities_and_is_refused(uadfv_root, tmp_path):
    by_video = make_split(uadfv_root, unit="person", ratios=RATIOS, seed=0)      # UADFV rule: NNNN_fake -> NNNN
    identity = person_function(read_person_map(uadfv_root / "identities.json"))
    report = leakage_report(by_video, identity)
    assert report["n_persons_shared"] == 4                     # seed 0: id00 (the politician) in all four pools
    shared = sorted({p for e in report["pairs"].values() for p in e["persons"]})
    with pytest.raises(LeakageError, match=r"person split refused: \d+ person\(s\) appear in more than one split"
                                           r".*split.person_map") as err:
        write_split(tmp_path / "split.json", by_video, identity)
    assert shared[0] in str(err.value)
    assert not (tmp_path / "split.json").exists() and not (tmp_path / "split_leakage.json").exists()
