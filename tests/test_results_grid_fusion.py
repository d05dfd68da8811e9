"""Fused cells of the results grid (issue 21 item 4): ``experiments.fusions`` plans
``<name>-seed<k>-fusion-<model>`` after its members, on the members' upstream runs and shared split;
results.json records the members and their identities; the page shows them beside the single cells."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.config import ConfigError, load_config
from common.io import write_json
from common.pipeline import plan
from results_grid import aggregate as A
from results_grid import cells as C
from results_grid import config as CF
from results_grid.detectors import NO_MEMBER_IDENTITY, detector_rows, fusion_table

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/results_uadfv.yaml"
MEMBERS = ["probe_meso_inception4", "probe_meso4", "meso4"]


def test_fused_cells_are_planned_after_their_members_on_their_upstream_runs(tmp_path):
    ex = CF.read_experiments(CONFIG, [f"experiments.work_dir={tmp_path / 'work'}"])   # not a local grid's outputs
    assert ex.fusions == {"meso_trio": {"members": MEMBERS, "models": ["kde", "logistic"], "score": "logit"}}
    cells = C.planned_cells(ex)
    fused = [c for c in cells if c.group == "fusion"]
    assert [c.name for c in fused] == ["meso_trio-seed0-fusion-kde", "meso_trio-seed0-fusion-logistic"]
    first_fused = cells.index(fused[0])
    assert all(cells.index(c) < first_fused for c in cells if c.detector in MEMBERS)
    g = C.Grid(ex)
    for c in fused:
        conf, ov = g.fusion_overrides(c)
        cfg = load_config(REPO / conf, ov)
        ups = [g.upstream_dir(C.Cell(m, c.seed, "logit", c.model)) for m in MEMBERS]
        assert cfg.get("slr.score") == "fusion" and cfg.get("slr.model") == c.model
        assert cfg.get("slr.fusion.members") == [C._rel(u) for u in ups]
        assert cfg.get("slr.fusion.names") == MEMBERS and cfg.get("output_dir") == C._rel(g.cell_dir(c))
        assert g.cell_dir(c) == ex.work_dir / "meso_trio" / "seed0" / f"fusion-{c.model}"
        decisions, _ = plan(cfg, "01", "16")
        run = {d.stage.id: d for d in decisions}
        for sid in ("02", "03", "04", "05", "06", "07", "15"):
            assert not run[sid].run and "fused run" in run[sid].reason
        assert run["08"].run and run["10"].run
    # the members' upstream runs read the same split settings, so stage 02 makes one split file for all
    up = []
    for m in MEMBERS:
        conf, ov = g.upstream_overrides(C.Cell(m, 0, "logit", "kde"))
        up.append(load_config(REPO / conf, ov))
    for key in ("seed", "dataset"):
        assert len({cfg.fingerprint([key]) for cfg in up}) == 1, key
    split = [{k: v for k, v in cfg.get("split").items() if k != "file"} for cfg in up]     # file: its own folder
    assert split[0] == split[1] == split[2] and split[0]["unit"] == "person"


def test_fusions_are_left_out_of_a_grid_without_every_member_and_bad_ones_are_refused(tmp_path):
    ex = CF.read_experiments(CONFIG, grid="external")             # meso4 is not in it
    assert not [c for c in C.planned_cells(ex) if c.group == "fusion"]
    for ov, want in ((["experiments.fusions.x.members=[probe_meso4,nope]"], r"fusions\.x\.members.*nope"),
                     (["experiments.fusions.x.members=[probe_meso4]"], r"experiments\.fusions.*at least 2"),
                     (["experiments.fusions.x={members: [probe_meso4, meso4], models: [svm]}"],
                      r"fusions\.x\.models.*svm")):
        with pytest.raises(ConfigError, match=want):
            CF.read_experiments(CONFIG, ov)


def test_results_record_the_members_identities_and_the_page_shows_them(tmp_path):
    run = tmp_path / "fusion-kde"
    det = {"fusion": {"score": "logit", "split_sha256": "ab" * 32, "choice": {}},
           "members": [{"name": "p1", "run_dir": "x", "identity": {"name": "meso4", "checkpoint_sha256": "1" * 64}},
                       {"name": "p2", "run_dir": "y", "identity": {"name": "meso4", "checkpoint_sha256": "2" * 64}}]}
    choice = {"fusion_used": False, "reason": "r", "member_cllr": {"p1": 0.61, "p2": 0.75},
              "fusion_cllr": {"0.1": 0.7, "1.0": 0.66}, "best_C": 1.0, "best_member": "p1", "cv": "folds"}
    write_json(run / "08_scores" / "summary.json", {"detector": det, "fusion": choice})
    rec = A.fusion_record(run)
    assert rec["members"] == ["p1", "p2"] and rec["identities"]["p2"]["checkpoint_sha256"] == "2" * 64
    assert rec["split_sha256"] == "ab" * 32 and rec["member_cllr"] == choice["member_cllr"]
    entry = {"cell": "trio-seed0-fusion-kde", "detector": "trio", "seed": 0, "level": "frame", "fusion": rec}
    single = {"cell": "p1-seed0-logit-kde", "detector": "p1", "seed": 0, "level": "frame"}
    assert detector_rows([entry, single]) == [single]
    lines = fusion_table([entry, single])
    row = next(ln for ln in lines if "trio-seed0-fusion-kde" in ln)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert "p1 (trained here: `best.pt` sha256 `1111111111111111`)" in cells[1] and "`2222222222222222`" in cells[1]
    rec["identities"]["p2"] = {}                       # a member dump older than the identity record
    row = next(ln for ln in fusion_table([{**entry, "fusion": rec}]) if "trio-seed0-fusion-kde" in ln)
    assert f"p2 ({NO_MEMBER_IDENTITY})" in row
    assert cells[2] == "p1 0.61, p2 0.75, fusion 0.66" and cells[3] == "no: p1 alone"
    assert json.loads(json.dumps(rec)) == rec
