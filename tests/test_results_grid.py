"""The results grid (issue 13): the smoke grid through the same command as the real one
(``run_experiments.py --smoke``: one detector, one seed, 1 epoch, tiny pools, on real UADFV), the
aggregate's schema, every cell's figures against its own run folder, resumability after an abrupt
stop mid-cell, and a byte-identical regeneration of the generated page."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from common import schema
from common.config import ConfigError
from common.io import numeric_column, read_csv
from results_grid import aggregate as A
from results_grid import cells as C
from results_grid import config as CF
from results_grid import page as P
from results_grid import tables as T
from slr import metrics

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/results_uadfv.yaml"
METRICS = ("cllr", "cllr_min", "cllr_cal", "eer", "auc")


def _run(tmp: Path, uadfv_root: Path, *extra: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, UADFV_ROOT=str(uadfv_root), PYTHONPATH=str(REPO))
    env.pop(CF.ABORT_ENV, None)
    env.update(env_extra or {})
    cmd = [sys.executable, str(REPO / "run_experiments.py"), "--config", CONFIG, "--smoke",
           "--set", f"experiments.smoke.work_dir={tmp / 'work'}",
           "--set", f"experiments.smoke.results_dir={tmp / 'results'}",
           "--set", f"experiments.smoke.docs={tmp / 'results.md'}", *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, uadfv_root):
    tmp = tmp_path_factory.mktemp("results_smoke")
    r = _run(tmp, uadfv_root)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    results = json.loads((tmp / "results" / "results.json").read_text())
    return {"tmp": tmp, "stdout": r.stdout, "results": results}


def _summaries(run_dir: Path) -> dict:
    out = {}
    for d in sorted(run_dir.iterdir()):
        if d.name[:2] in ("10", "11", "12", "13", "14") and (d / "summary.json").is_file():
            out[d.name] = json.loads((d / "summary.json").read_text())
    return out


@pytest.mark.slow
def test_smoke_progress_lines_and_schema(smoke):
    res, out = smoke["results"], smoke["stdout"]
    n_cells = len({e["cell"] for e in res["cells"]}) + len({e["cell"] for e in res["paper"]["paper_protocol"]})
    assert n_cells == 3                                      # 2 grid cells (one detector x seed, 2 models) + paper
    for i in range(1, n_cells + 1):                         # one progress line per cell, with its outcome
        assert f"[{i}/{n_cells}]" in out and "done in" in out
    assert set(res) >= {"cells", "paper", "grid", "seconds", "device", "groups", "pools"}
    assert res["grid"]["detectors"] == ["meso4"] and res["grid"]["seeds"] == [0]
    assert isinstance(res["seconds"], (int, float)) and res["seconds"] > 0 and isinstance(res["device"], str)
    logs = {(REPO / e["run_dir"] / "03_train" / "log.csv").resolve() for e in res["cells"]}    # one shared upstream
    assert len(logs) == 1 and res["training_seconds"] == pytest.approx(
        sum(float(v) for p in logs for v in read_csv(p)["seconds"]), abs=0.1)
    assert {(e["model"], e["level"]) for e in res["cells"]} == {(m, lv) for m in ("kde", "logistic")
                                                                for lv in ("frame", "video")}
    for e in res["cells"] + res["paper"]["paper_protocol"]:
        assert {"detector", "seed", "score", "model", "level", "lr_csv", "test"} <= set(e)
        t = e["test"]
        for k in METRICS:
            assert isinstance(t[k], float) and math.isfinite(t[k]), (e["cell"], k)
        assert 0 <= t["auc"] <= 1 and 0 <= t["eer"] <= 1
        assert math.isclose(t["cllr_cal"], t["cllr"] - t["cllr_min"], abs_tol=1e-9)
        assert isinstance(t["ci95"], dict)
        for k, (lo, hi) in t["ci95"].items():
            assert lo <= hi, (e["cell"], k)
        lo, hi = t["bounds_log10"]
        assert lo <= 0 <= hi
        assert not Path(e["lr_csv"]).is_absolute()           # relative to the repository root
        cols = read_csv(REPO / e["lr_csv"], required=CF.LR_COLUMNS)
        assert list(cols)[:5] == list(CF.LR_COLUMNS)
    # the grid's runs use four person-disjoint pools where the split supports them
    assert res["pools"] and all(set(p) >= {"train", "val", "test"} for p in res["pools"].values())


@pytest.mark.slow
def test_every_cell_figure_equals_its_run_folder(smoke):
    res = smoke["results"]
    checked = 0
    for e in res["cells"] + res["paper"]["paper_protocol"]:
        run_dir = REPO / e["run_dir"]
        sums = _summaries(run_dir)
        assert sums, e["run_dir"]
        for k in METRICS + ("misleading_hp", "misleading_hd"):
            found = [s["levels"][e["level"]]["test"][k] for s in sums.values()
                     if isinstance(s.get("levels", {}).get(e["level"], {}).get("test"), dict)
                     and k in s["levels"][e["level"]]["test"]]
            assert found, (e["cell"], k)
            for v in found:                                 # every stage summary that reports it agrees
                assert v == e["test"][k], (e["cell"], e["level"], k, v, e["test"][k])
                checked += 1
        # the copied LR CSV is the run's, and its Cllr recomputed from the copy is the reported one
        src = run_dir / "10_kde_lr" / ("test_lr.csv" if e["level"] == "frame" else "test_video_lr.csv")
        a, b = read_csv(src), read_csv(REPO / e["lr_csv"])
        assert a["llr"] == b["llr"] and a["label"] == b["label"] and a["score"] == b["score"]
        llr = numeric_column(b, "llr", e["lr_csv"])
        lab = numeric_column(b, "label", e["lr_csv"], int)
        assert metrics.cllr(llr[lab == 0], llr[lab == 1]) == pytest.approx(e["test"]["cllr"], abs=1e-9)
        assert metrics.auc(llr[lab == 0], llr[lab == 1]) == pytest.approx(e["test"]["auc"], abs=1e-9)
    assert checked > 0


@pytest.mark.slow
def test_page_regenerates_byte_identical(smoke, tmp_path):
    tmp = smoke["tmp"]
    page = (tmp / "results.md").read_bytes()
    r = subprocess.run([sys.executable, "-m", "results_grid.page", "--results", str(tmp / "results" / "results.json"),
                        "--out", str(tmp / "results.md")], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr
    assert (tmp / "results.md").read_bytes() == page
    text = page.decode()
    assert "do not edit by hand" in text and "## Findings" in text
    for e in smoke["results"]["cells"]:                      # every cell's Cllr appears in the page
        assert T.fmt(e["test"]["cllr"]) in text
    assert (tmp / "results" / "tippett_best_worst.png").stat().st_size > 10_000


@pytest.mark.slow
def test_rerun_skips_every_finished_cell(smoke, uadfv_root):
    tmp = smoke["tmp"]
    before = smoke["results"]
    r = _run(tmp, uadfv_root)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("up to date, skipped") == 3 and "runs (" not in r.stdout
    after = json.loads((tmp / "results" / "results.json").read_text())
    assert A.content_hash(after) == A.content_hash(before)


def _figures(res: dict, cell: str) -> dict:
    return {e["level"]: {k: e["test"][k] for k in METRICS + ("bounds_log10", "ci95")}
            for e in res["cells"] if e["cell"] == cell}


@pytest.mark.slow
def test_killed_mid_cell_then_rerun_gives_the_uninterrupted_figures(smoke, uadfv_root, tmp_path):
    cell = "meso4-seed0-logit-kde"
    one_cell = ("--set", "experiments.smoke.models=[kde]", "--set", "experiments.smoke.paper.enabled=false")
    r = _run(tmp_path, uadfv_root, *one_cell, env_extra={CF.ABORT_ENV: f"{cell}@10"})
    assert r.returncode == 137, r.stdout[-2000:] + r.stderr[-2000:]
    run_dir = tmp_path / "work" / "meso4" / "seed0" / "logit-kde"
    assert (run_dir / "10_kde_lr" / ".stage_stamp.json").is_file()
    assert not (run_dir / "11_tippett").exists() and not (tmp_path / "results" / "results.json").exists()
    r = _run(tmp_path, uadfv_root, *one_cell)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "runs (11_tippett" in r.stdout                  # resumed after the last finished stage
    log = (run_dir / "experiment.log").read_text()
    assert "== stage 10_kde_lr: skipped" in log
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    got, want = _figures(res, cell), _figures(smoke["results"], cell)
    assert got and got == want


@pytest.mark.slow
def test_reuse_upstream_reruns_the_lr_stages_only(smoke, uadfv_root, tmp_path):
    """--reuse-upstream --force after an upstream config change: no retraining, every cell's LR stages
    re-run on the same dumps (same figures), and results.json and the page list the kept upstreams."""
    shutil.copytree(smoke["tmp"] / "work", tmp_path / "work", symlinks=True)
    log_path = tmp_path / "work" / "meso4" / "seed0" / "logit-kde" / "experiment.log"
    n_runs = sum(ln.startswith("$ ") for ln in log_path.read_text().splitlines())
    no_paper = ("--set", "experiments.smoke.paper.enabled=false")
    r = _run(tmp_path, uadfv_root, *no_paper, "--set", "experiments.smoke.set.training.max_steps_per_epoch=4",
             "--reuse-upstream", "--force")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.count("upstream kept as it is (--reuse-upstream), although ") == 2, r.stdout[-2000:]
    new_runs = [ln for ln in log_path.read_text().splitlines() if ln.startswith("$ ")][n_runs:]
    assert len(new_runs) == 1 and " --from 08 " in new_runs[0] and " --force" in new_runs[0]   # the cell range only
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    assert set(res["upstream_reused"]) == {"meso4-seed0-logit-kde", "meso4-seed0-logit-logistic"}
    for cell in res["upstream_reused"]:
        assert _figures(res, cell) == _figures(smoke["results"], cell)
    assert "**Upstream reused**" in (tmp_path / "results.md").read_text()


# ---------------------------------------------------------------------------------- fast unit tests
def test_experiments_keys_are_declared_in_the_schema(tmp_path):
    """An undeclared key is refused naming the closest declared one; an absent key reads the schema's
    default (common/schema.py RESULTS_KEYS), nowhere else."""
    for ov, want in ((["experiments.seed=[0]"], r"unknown config key 'experiments\.seed'.*'experiments\.seeds'"),
                     (["experiments.paper.sound_sedes=[0]"], r"'experiments\.paper\.sound_seeds'"),
                     (["experiments.detectors.meso4.confg=x"], r"experiments\.detectors.*'meso4'.*confg"),
                     (["experiments.smoke.foo=1"], r"experiments\.smoke.*foo"),
                     (["experiments.seeds=[a]"], r"experiments\.seeds.*item 0 is 'a'")):
        with pytest.raises(ConfigError, match=want):
            CF.read_experiments(CONFIG, ov)
    minimal = tmp_path / "r.yaml"
    minimal.write_text("experiments:\n  grids: {cpu: [meso4]}\n  detectors: {meso4: {set: {model.name: meso4}}}\n"
                       "  seeds: [3]\n  scores: [logit]\n  models: [kde]\n  dataset_root_env: null\n"
                       "  dataset_root: ..\n")
    ex = CF.read_experiments(minimal)
    default = {k.name.split(".", 1)[1]: k.default for k in schema.RESULTS_KEYS}
    assert (ex.name, ex.grid, ex.published, ex.person_map) == (default["name"], default["grid"], None, None)
    assert ex.work_dir == REPO / default["work_dir"] and ex.docs == REPO / default["docs"]
    assert ex.detectors[0].config == default["base_config"] and ex.common_set == {}
    assert C.paper_cells(ex) == [] and [c.name for c in C.grid_cells(ex)] == ["meso4-seed3-logit-kde"]
    ex.paper.update(enabled=True)      # on: its schema defaults, sound runs on the grid's seeds and models
    assert [c.name for c in C.paper_cells(ex)] == ["paperprotocol-paper_srm-seed1024-cosine_centroid-kde",
                                                   "paper_srm-seed3-cosine_centroid-kde"]


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text((REPO / CONFIG).read_text().replace("scores: [logit]", "scores: [cosine, logit]"))
    with pytest.raises(ConfigError, match=r"experiments\.scores.*cosine"):
        CF.read_experiments(bad)
    with pytest.raises(ConfigError, match=r"experiments\.grids.*'tpu'"):
        CF.read_experiments(CONFIG, grid="tpu")
    r = subprocess.run([sys.executable, str(REPO / "run_experiments.py"), "--config", str(bad)], cwd=REPO,
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 2 and "experiments.scores" in r.stderr and r.stderr.count("\n") == 1


def test_dataset_root_from_env_or_relative_default(monkeypatch, tmp_path):
    monkeypatch.delenv("UADFV_ROOT", raising=False)
    assert CF.resolve_dataset_root({}, "x") == (REPO / ".." / "shared" / "data" / "UADFV").resolve()
    assert CF.resolve_dataset_root({"dataset_root": "data/U"}, "x") == (REPO / "data" / "U").resolve()
    monkeypatch.setenv("UADFV_ROOT", str(tmp_path))
    assert CF.resolve_dataset_root({"dataset_root": "data/U"}, "x") == tmp_path.resolve()
    text = (REPO / CONFIG).read_text()
    assert "/work/" not in text and "\n  dataset_root: ../shared/data/UADFV" in text


def test_full_cpu_grid_shape_and_upstream_reuse():
    ex = CF.read_experiments(CONFIG)
    cells = C.grid_cells(ex)
    assert len(cells) == 8 * 1 * 1 * 2                     # detectors x seeds x scores x models
    assert {c.detector for c in cells} == {"probe_meso_inception4", "probe_meso4", "published_meso4_cv",
                                           "published_meso4", "meso4", "meso_inception4", "sbi_meso4",
                                           "dlib_face_probe"}
    assert [d.name for d in ex.detectors if d.control] == ["dlib_face_probe"]
    assert ex.person_map == (ex.dataset_root / "identities.json").resolve()
    g = C.Grid(ex)
    ups = {g.upstream_dir(c) for c in cells}
    assert len(ups) == 8                                    # stages 02-07 once per detector x seed
    assert len({g.cell_dir(c) for c in cells}) == 16
    assert f"split.person_map={json.dumps(str(ex.person_map))}" in g.upstream_overrides(cells[0])[1]
    gpu = CF.read_experiments(CONFIG, grid="gpu")
    assert {"srm", "efficientnet_b4", "lib", "ssaaformer"} <= {d.name for d in gpu.detectors}
    from common.config import load_config
    before, _ = C.split_table(C._stage_table(), False)
    for c in cells[:4]:                          # by_model + by_score: stage 15 only in the logit-logistic cells
        conf, up = g.upstream_overrides(c)
        conf, ov = g.cell_overrides(c, load_config(REPO / conf, up), before)
        cell_cfg = load_config(REPO / conf, ov)
        assert cell_cfg.get("robustness.enabled") is (c.model == "logistic" and c.score == "logit"), c
        assert cell_cfg.get("slr.model") == c.model and cell_cfg.get("output_dir") == C._rel(g.cell_dir(c))
    flat = CF.flatten_set({"training": {"epochs": 2}, "training.optimizer": {"name": "adam"}})
    assert flat == {"training.epochs": 2, "training.optimizer": {"name": "adam"}}


def _entry(cell, det, seed, model, level, cllr, ci):
    return {"cell": cell, "detector": det, "seed": seed, "score": "logit", "model": model, "level": level,
            "protocol": "sound", "lr_csv": f"results/x/cells/{cell}/test_lr.csv", "run_dir": "outputs/x",
            "test": {"cllr": cllr, "cllr_min": cllr / 2, "cllr_cal": cllr / 2, "eer": 0.2, "auc": 0.8,
                     "misleading_hp": 0.1, "misleading_hd": 0.05, "n_hp": 10, "n_hd": 10, "n_persons": 7,
                     "ci95": {"cllr": ci}, "bounds_log10": [-1.0, 1.5],
                     "monotonicity": {"direction_changes": 0, "largest_drop_log10": 0.0}},
            "other_pools": {}}


def test_render_is_deterministic_and_findings_follow_the_numbers():
    cells = [_entry("a-seed0-logit-kde", "a", 0, "kde", "frame", 0.4, [0.3, 0.5]),
             _entry("a-seed1-logit-kde", "a", 1, "kde", "frame", 0.6, [0.45, 0.8]),
             _entry("b-seed0-logit-kde", "b", 0, "kde", "frame", 1.2, [0.9, 1.6])]
    res = {"name": "uadfv", "grid": {"name": "cpu", "config": CONFIG, "detectors": ["a", "b"], "seeds": [0, 1],
                                     "scores": ["logit"], "models": ["kde"]},
           "cells": cells, "groups": A.summarise_groups(cells), "pools": {}, "seconds": 12.0, "device": "cpu",
           "paper": {"published": None, "paper_protocol": [], "sound_on_paper_features": [],
                     "sound_on_paper_features_groups": [], "contaminated": CF.CONTAMINATED},
           "docs": "docs/results.md", "results_json": "results/x/results.json"}
    a = P.render(json.loads(json.dumps(res)))
    assert a == P.render(res)
    f = " ".join(P.findings(res))
    assert "lowest test Cllr is 0.4 bits [0.3, 0.5] (`a-seed0-logit-kde`" in f
    assert "highest 1.2 bits [0.9, 1.6] (`b-seed0-logit-kde`" in f
    assert "do not overlap" in f and "1 of 3 cells have a test Cllr of 1 bit or more" in f
    assert "widest Cllr range is 0.4-0.6 bits (a, logit, kde; 2 seeds)" in f
    g = [x for x in res["groups"] if x["detector"] == "a"][0]
    assert g["test"]["cllr"] == {"mean": 0.5, "min": 0.4, "max": 0.6, "n": 2}
    assert "| a | logit | kde | 0, 1 | 0.8 [0.8, 0.8] | 0.2 [0.2, 0.2] | 0.5 [0.4, 0.6] |" in a
    assert "not stored in this repository" in a
    assert T.fmt(0.123456) == "0.123" and T.fmt(1234.5) == "1.23e+03" and T.fmt(7) == "7"
    assert T.fmt(float("inf")) == "inf" and T.fmt(None) == "n/a"
    assert np.isfinite(g["test"]["auc"]["mean"])


@pytest.mark.slow
def test_gpu_grid_command_plans_every_cell_on_cpu(tmp_path, uadfv_root):
    """--grid gpu on a machine without a GPU: the command exists, every cell's config loads through
    the pipeline's own loader and the runner plans it (--dry-run runs nothing)."""
    env = dict(os.environ, UADFV_ROOT=str(uadfv_root), PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, str(REPO / "run_experiments.py"), "--config", CONFIG, "--grid", "gpu",
                        "--dry-run", "--set", f"experiments.work_dir={tmp_path / 'work'}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("[")]
    ex = yaml.safe_load((REPO / CONFIG).read_text())["experiments"]
    per_detector = len(ex["seeds"]) * len(ex["scores"]) * len(ex["models"])
    paper = ex["paper"]
    assert len(ex["grids"]["gpu"]) == 7 and per_detector >= 2
    assert len(lines) == (7 * per_detector + len(paper["paper_seeds"])             # grid + paper protocol
                          + len(paper["sound_seeds"]) * len(paper["sound_models"]))  # + sound on paper features
    for det in ("srm", "efficientnet_b4", "lib", "ssaaformer"):
        assert sum(f"] {det}-seed" in ln and "device cuda" in ln for ln in lines) == per_detector
    assert all("would run" in ln for ln in lines) and not (tmp_path / "work").exists()


@pytest.mark.slow
def test_robustness_columns_equal_stage_15_of_the_cell(smoke):
    """Issue 14, item 4: the smoke grid runs stage 15 in every cell; each cell's robustness figures in
    results.json are its run folder's, the copied table is the run's, and the page has one column per
    degradation family for the best such cell."""
    res, tmp = smoke["results"], smoke["tmp"]
    frame = [e for e in res["cells"] if e["level"] == "frame"]
    assert frame and all(e.get("robustness") for e in res["cells"])
    for e in res["cells"]:
        s15 = json.loads((REPO / e["run_dir"] / "15_robustness" / "summary.json").read_text())
        r = e["robustness"]
        assert list(r["families"]) == list(s15["degradations"])
        rows = {(t["family"], t["strength"]): t for t in s15["table"] if t["level"] == e["level"]}
        assert r["clean"]["cllr"] == rows[("clean", None)]["cllr"]
        for fam, info in r["families"].items():
            assert [s["strength"] for s in info["settings"]] == s15["degradations"][fam]
            for s in info["settings"]:
                assert s["cllr"] == rows[(fam, s["strength"])]["cllr"] and s["auc"] == rows[(fam, s["strength"])]["auc"]
                assert s["ci95"]["cllr"] == rows[(fam, s["strength"])]["ci95"]["cllr"]
            assert info["validated_strongest"] == s15["validated_range"][fam]["strongest"]
        copied = read_csv(REPO / r["csv"])
        assert copied == read_csv(REPO / e["run_dir"] / "15_robustness" / "robustness.csv")
    best = min(frame, key=lambda e: (e["test"]["cllr"], e["cell"]))
    assert T.robustness_cell(res)["cell"] == best["cell"]
    page = (tmp / "results.md").read_text()
    sec = page[page.index("## Robustness (stage 15)"):page.index("## Persons, videos")]
    assert f"Cell `{best['cell']}`" in sec and "the best cell overall)" in sec
    header = next(ln for ln in sec.splitlines() if ln.startswith("| level |"))
    assert header.count("|") - 1 == 3 + len(best["robustness"]["families"])     # level, figure, clean + families
    for fam, info in best["robustness"]["families"].items():
        assert T.FAMILY_LABELS.get(fam, fam) in header
        strongest = info["settings"][-1]
        assert f"{T.fmt(strongest['strength'])}: {T.fmt(strongest['cllr'])}{T.fmt_ci(strongest['ci95']['cllr'])}" in sec


def test_robustness_table_names_the_cell_it_uses_and_says_when_there_is_none():
    def robust(cllr_clean, strong):
        row = {"strength": None, "cllr": cllr_clean, "ci95": {"cllr": [cllr_clean - 0.1, cllr_clean + 0.1]}}
        return {"n_frames": 80, "n_persons": 7, "clean": row, "csv": "results/x/cells/c/robustness.csv",
                "families": {"jpeg": {"settings": [{"strength": 90, "cllr": cllr_clean},
                                                   {"strength": 30, "cllr": strong, "ci95": {"cllr": [0.8, 1.3]}}],
                                      "validated_strongest": None, "status": "not validated: the clean system fails"}}}
    a = _entry("a-seed0-logit-kde", "a", 0, "kde", "frame", 0.3, [0.2, 0.4])           # best, no stage 15
    b = _entry("a-seed0-logit-logistic", "a", 0, "logistic", "frame", 0.5, [0.4, 0.6])
    c = _entry("b-seed0-logit-logistic", "b", 0, "logistic", "frame", 0.9, [0.8, 1.0])
    b["robustness"], c["robustness"] = robust(0.55, 1.1), robust(0.95, 1.2)
    res = {"cells": [a, b, c]}
    assert T.robustness_cell(res)["cell"] == "a-seed0-logit-logistic"
    text = "\n".join(T.robustness_table(res))
    assert "Cell `a-seed0-logit-logistic`" in text and "`a-seed0-logit-kde`, did not run stage 15" in text
    assert "| frame | Cllr at the strongest setting | 0.55 [0.45, 0.65] | 30: 1.1 [0.8, 1.3] |" in text
    assert "| both | validated range (strongest passing setting) |  | not validated: the clean system fails |" in text
    assert "JPEG quality 30: 1.1" in T.robustness_finding(res)
    assert "No cell of the grid ran stage 15" in T.robustness_table({"cells": [a]})[0]
    assert T.robustness_finding({"cells": [a]}) is None


@pytest.mark.slow
def test_gpu_grid_runs_a_gpu_detector_on_cpu_with_a_tiny_setting(tmp_path, uadfv_root):
    """Issue 13: without a GPU the `--grid gpu` command still runs, here for LIB (a GPU-grid detector)
    on CPU with a tiny setting (small-CNN blocks, 128 px, 3 steps): its cells land in results.json
    under grid `gpu`, with the device and the detector's overrides recorded."""
    r = _run(tmp_path, uadfv_root, "--grid", "gpu",
             "--set", "experiments.smoke.grids={gpu: [lib]}", "--set", "experiments.smoke.models=[logistic]",
             "--set", "experiments.smoke.paper={enabled: false}",
             "--set", "experiments.smoke.detector_set={lib: {device: cpu, training.epochs: 1, "
                      "training.frames_per_video: 2, model.input_size: 128, model.lib.model: small_cnn}}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    assert res["grid"]["name"] == "gpu" and res["grid"]["detectors"] == ["lib"]
    assert res["device"].startswith("cpu") and res["grid"]["detector_overrides"]["lib"]["device"] == "cpu"
    assert {(e["cell"], e["level"]) for e in res["cells"]} == {("lib-seed0-logit-logistic", lv)
                                                              for lv in ("frame", "video")}
    for e in res["cells"]:
        assert math.isfinite(e["test"]["cllr"]) and (REPO / e["lr_csv"]).is_file()
    assert "--grid gpu" in (tmp_path / "results.md").read_text()


def test_detector_flag_identity_and_shortcut_control(tmp_path):
    """Issue 18: each cell records its detector (identity, raw AUC per pool, 'did not learn') read from its
    run folder; the page shows the detector flag apart from the degenerate flags, and a shortcut control
    is labelled and never the best cell."""
    import hashlib
    from results_grid.detectors import detector_record
    run = tmp_path / "run"
    (run / "03_train").mkdir(parents=True)
    (run / "04_features").mkdir()
    (run / "03_train" / "best.pt").write_bytes(b"weights")
    (run / "03_train" / "summary.json").write_text(json.dumps(
        {"identity": {"mode": "probe", "weights": "w/MesoInception_DF.h5", "weights_sha256": "ab" * 32}}))
    aucs = {"val": {"auc": 0.55, "ci95": [0.4, 0.7], "n_frames": 40, "n_persons": 5}}
    verdict = {"learned": False, "flag": "detector did not learn", "failing": ["val"], "rule": "r"}
    (run / "04_features" / "summary.json").write_text(json.dumps(
        {"checkpoint": str(run / "03_train" / "best.pt"), "pools": ["val"], "detector_auc": aucs,
         "detector_learned": verdict}))
    rec = detector_record(run)
    assert rec["auc"] == aucs and rec["learned"] == verdict
    assert rec["identity"]["weights_sha256"] == "ab" * 32
    assert rec["identity"]["checkpoint_sha256"] == hashlib.sha256(b"weights").hexdigest()

    a = _entry("a-seed0-logit-kde", "a", 0, "kde", "frame", 1.0, [0.99, 1.0])
    a["test"]["flags"] = ["zero-width ELUB bounds"]
    a.update(detector_flag="detector did not learn", detector_learned=verdict, detector_auc=aucs,
             detector_identity=rec["identity"])
    b = _entry("b-seed0-logit-kde", "b", 0, "kde", "frame", 0.42, [0.3, 0.55])
    c = _entry("c-seed0-logit-kde", "c", 0, "kde", "frame", 0.2, [0.1, 0.3])
    c["control"] = True
    res = {"name": "uadfv", "grid": {"name": "cpu", "config": CONFIG, "detectors": ["a", "b", "c"], "seeds": [0],
                                     "scores": ["logit"], "models": ["kde"], "person_map": "<dataset root>/ids.json"},
           "cells": [a, b, c], "groups": A.summarise_groups([a, b, c]), "pools": {}, "seconds": 1.0, "device": "cpu",
           "paper": {"published": None, "paper_protocol": [], "sound_on_paper_features": [],
                     "sound_on_paper_features_groups": [], "contaminated": CF.CONTAMINATED},
           "docs": "docs/results.md", "results_json": "results/x/results.json"}
    page, f = P.render(res), " ".join(P.findings(res))
    assert "| degenerate: zero-width ELUB bounds; detector did not learn |" in page
    assert "| a | 0 | probe: `MesoInception_DF.h5` sha256 `abababababababab` | - | n/a | 0.55 [0.4, 0.7] |" in page
    assert "| c (shortcut control) |" in page
    assert "lowest test Cllr is 0.42 bits [0.3, 0.55] (`b-seed0-logit-kde`" in f       # the control is not "best"
    assert "Shortcut control `c-seed0-logit-kde` (not a deepfake detector): test Cllr 0.2 bits" in f
    assert "Detectors that did not learn (raw AUC interval on val or calib not above chance): a." in f
    assert "each of them carries the 'detector did not learn' flag" in f
    assert A.figure_cells(res)[0]["cell"] == "b-seed0-logit-kde"
