"""Issue 21 item 4 in the pipeline: ``slr.score: fusion`` over two real member runs on the shared UADFV
crops (linear probes on the MesoNet authors' MesoInception_DF and Meso4_DF weights, 4 frames per video),
the saved system's member identities, casework on the fused system and its refusals."""
from __future__ import annotations

import csv
import re
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from common.features import read_feature_dump
from common.io import InputError, sha256_file
from common.splits import person_of_video
from slr.fusion import LogisticFusion, choose_fusion
from slr.io import ScoreSet
from slr.models import group_folds
from tests.test_probe_external import run_ok, shared_sets

MEMBERS = {"a": ("meso_inception4", "MesoInception_DF.h5"), "b": ("meso4", "Meso4_DF.h5")}
SMALL = ["--set", "split.unit=person", "--set", "split.ratios=[0.45,0.15,0.25,0.15]", "--set", "training.mode=probe",
         "--set", "training.frames_per_video=4", "--set", "training.num_workers=0",
         "--set", "features.frames_per_video=4", "--set", "features.num_workers=0"]
FUSED = ["--set", "slr.score=fusion", "--set", "slr.model=logistic", "--set", "slr.bootstrap.n=50",
         "--set", "slr.case_interval.n=10"]


def fused_sets(root: Path, uadfv_root: Path, members: list[Path]) -> list[str]:
    return ["--set", f"output_dir={root}", "--set", f"dataset.root={uadfv_root}", "--set", "device=cpu",
            "--set", f"slr.fusion.members=[{','.join(str(m) for m in members)}]", *FUSED]


@pytest.fixture(scope="module")
def fused_run(tmp_path_factory, uadfv_root, mesonet_root):
    """Two member runs (stages 02-04) and the fused run (stages 08-10) over them."""
    base = tmp_path_factory.mktemp("fusion")
    members = []
    for key, (model, weights) in MEMBERS.items():
        out = base / key
        run_ok(["run_pipeline.py", "--config", "configs/uadfv.yaml", "--from", "02", "--to", "04",
                *shared_sets(uadfv_root, mesonet_root, out, weights), "--set", f"model.name={model}", *SMALL])
        members.append(out)
    fused = base / "fused"
    sets = fused_sets(fused, uadfv_root, members)
    p = run_ok(["run_pipeline.py", "--config", "configs/uadfv.yaml", "--to", "10", *sets])
    return fused, members, sets, p.stdout


def _member_matrix(members: list[Path], pool: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image paths, labels, persons, (items x members) logits) straight from the members' stage-04 dumps."""
    dumps = [read_feature_dump(m / "04_features" / pool) for m in members]
    paths = np.asarray(dumps[0].image_paths, dtype=str)
    cols = []
    for d in dumps:
        index = {p: i for i, p in enumerate(np.asarray(d.image_paths, dtype=str))}
        cols.append(np.asarray(d.logit, dtype=np.float64)[[index[p] for p in paths]])
    persons = person_of_video(members[0] / "02_split" / "split.json")
    return paths, dumps[0].labels.astype(int), np.array([persons[v] for v in dumps[0].video_ids]), np.column_stack(cols)


def _scores(path: Path) -> dict[str, float]:
    with open(path, newline="") as fh:
        return {r["image_path"]: float(r["score"]) for r in csv.DictReader(fh)}


def test_fused_run_equals_a_direct_fusion_of_the_members_dumps(fused_run):
    fused, members, _, stdout = fused_run
    for sid in ("01_faces", "02_split", "03_train", "04_features", "07_classifier_eval"):
        assert f"stage {sid}: skipped, not run in a fused run" in stdout
    s8 = json.loads((fused / "08_scores" / "summary.json").read_text())
    s10 = json.loads((fused / "10_kde_lr" / "summary.json").read_text())
    paths, y, persons, m = _member_matrix(members, "calib")
    folds, seed = s10["settings"]["crossfit_folds"], s10["settings"]["seed"]
    system, choice = choose_fusion(m, y, ["meso_inception4", "meso4"], persons, None, folds, seed)
    print(f"fusion on real calib: members {choice['member_cllr']}, fused {choice['fusion_cllr']}: {choice['reason']}")
    for rec in (s8["fusion"], s10["fusion"]):
        assert rec["member_cllr"] == pytest.approx(choice["member_cllr"], rel=1e-9)
        assert rec["fusion_cllr"] == pytest.approx(choice["fusion_cllr"], rel=1e-9)
        assert (rec["fusion_used"], rec["best_C"], rec["reason"]) == (choice["fusion_used"], choice["best_C"],
                                                                      choice["reason"])
    fold, k = group_folds(persons, folds, seed, y)       # calib: cross-fitted fused LLRs
    cf = np.empty(len(y))
    for i in range(k):
        cf[fold == i] = LogisticFusion(system.members, system.C).fit(m[fold != i], y[fold != i]).llr(m[fold == i])
    got = _scores(fused / "08_scores" / "calib.csv")
    assert np.allclose([got[p] for p in paths], cf, rtol=0, atol=1e-10)
    tpaths, _, _, tm = _member_matrix(members, "test")   # test: the fusion fitted on all of calib
    got = _scores(fused / "08_scores" / "test.csv")
    assert np.allclose([got[p] for p in tpaths], system.llr(tm), rtol=0, atol=1e-10)
    # the saved system holds each member's stage-04 identity and the fusion weights
    sysj = json.loads((fused / "10_kde_lr" / "system" / "system.json").read_text())
    det = sysj["detector"]
    assert [x["identity"] for x in det["members"]] == [
        json.loads((mm / "04_features" / "summary.json").read_text())["detector"] for mm in members]
    assert det["fusion"]["choice"]["system"]["weights_ln"] == pytest.approx(system.w.tolist(), rel=1e-9)
    assert det["fusion"]["split_sha256"] == sha256_file(members[0] / "02_split" / "split.json")


def test_fused_run_refuses_members_on_another_split(fused_run, tmp_path, uadfv_root):
    from tests.conftest import run_repo_cmd
    _, members, _, _ = fused_run
    other = tmp_path / "other"
    shutil.copytree(members[1], other, symlinks=True)
    split = other / "02_split" / "split.json"
    data = json.loads(split.read_text())
    data["meta"]["seed"] = -1
    split.write_text(json.dumps(data))
    p, _ = run_repo_cmd(["slr/08_similarity_scores.py", "--config", "configs/uadfv.yaml",
                         *fused_sets(tmp_path / "f", uadfv_root, [members[0], other])])
    assert p.returncode == 2
    msg = p.stderr.strip().splitlines()[-1]
    assert "slr.fusion.members" in msg and str(members[0] / "02_split" / "split.json") in msg and str(split) in msg
    assert sha256_file(split) in msg


def test_joined_refuses_members_with_different_items():
    from slr.fused_stage import Member, _joined

    def ss(paths):
        n = len(paths)
        return ScoreSet(np.arange(n, dtype=float), np.zeros(n, int), np.array(paths), np.array(paths), f"dump{n}",
                        person_ids=np.array(paths))
    ms = [Member("a", Path("a"), Path("a"), Path("a"), {}), Member("b", Path("b"), Path("b"), Path("b"), {})]
    base, mat = _joined("test", [ss(["x", "y"]), ss(["y", "x"])], ms)
    assert mat.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    with pytest.raises(InputError, match="pool 'test' has different items in dump2 .* and dump3"):
        _joined("test", [ss(["x", "y"]), ss(["x", "y", "z"])], ms)


def test_fused_casework_runs_every_member_and_refuses_a_swapped_member(fused_run, tmp_path, uadfv_root, capsys):
    from casework.outcome import EXIT_CONFIG
    from evidence import main as evidence_main
    fused, members, sets, _ = fused_run
    q = tmp_path / "q.png"
    shutil.copy(sorted((uadfv_root / "real" / "frames" / "0003").glob("*.png"))[0], q)
    args = ["--config", "configs/uadfv.yaml", *sets, "--input", str(q), "--allow-unvalidated-system"]
    code = evidence_main([*args, "--output", str(tmp_path / "cases")])
    assert code != EXIT_CONFIG, capsys.readouterr().err
    record = json.loads(next((tmp_path / "cases").rglob("evidence.json")).read_text())
    det = record["system"]["detector"]
    assert [x["checkpoint_sha256"] for x in det["members"]] == [sha256_file(m / "03_train" / "best.pt")
                                                                 for m in members]
    assert det["fusion"]["members"] == ["meso_inception4", "meso4"]
    # one member's checkpoint swapped (same architecture, another head bias): refused, both hashes named
    best = members[1] / "03_train" / "best.pt"
    keep = tmp_path / "best.pt"
    shutil.copy(best, keep)
    ck = torch.load(best, weights_only=True)
    ck["model"]["head.0.bias"] = ck["model"]["head.0.bias"] + 0.5
    torch.save(ck, best)
    try:
        capsys.readouterr()
        assert evidence_main([*args, "--output", str(tmp_path / "cases2")]) == EXIT_CONFIG
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "slr.fusion.members[1]" in err[0]
        assert sha256_file(best) in err[0] and sha256_file(keep) in err[0]
        assert not (tmp_path / "cases2").exists()
    finally:
        shutil.copy(keep, best)


def _floats(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", cell)]


def test_report_puts_the_fused_system_beside_each_member_with_intervals(fused_run):
    from evaluation.report_run import load_run
    from evaluation.report_sections import fusion_html
    fused = fused_run[0]
    s10 = json.loads((fused / "10_kde_lr" / "summary.json").read_text())
    html = fusion_html(load_run(fused), "test")
    table = html[html.index("<div id='fusion-table'>"):html.index("<div id='fusion-cv'>")]
    rows = [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
            for r in re.findall(r"<tr>(.*?)</tr>", table)]
    rows = [r for r in rows if r]
    names = list(s10["fusion_members"])
    assert len(rows) == 2 * (len(names) + 1)                     # frame and video: each member, then the fused system
    for name, role, level, *cells in rows:
        blk = (s10["levels"] if name == "fused system" else s10["fusion_members"][name])[level]["test"]
        assert role == ("member alone" if name != "fused system" else
                        "fusion" if s10["fusion"]["fusion_used"] else f"best member ({s10['fusion']['best_member']})")
        for key, cell in zip(("cllr", "cllr_min", "eer"), cells):
            want = [blk[key], *blk["ci95"][key]]
            assert _floats(cell) == pytest.approx(want, rel=5e-3, abs=1e-12), (name, level, key, cell)
    used = "Fusion used." if s10["fusion"]["fusion_used"] else "Fusion not used."
    assert f"<b>{used}</b> Why: {s10['fusion']['reason']}" in html
    cv = html[html.index("<div id='fusion-cv'>"):]
    for n in names:
        assert re.search(rf"<td[^>]*>{n}</td><td[^>]*>member</td><td[^>]*>([^<]+)</td>", cv)
        got = float(re.search(rf"<td[^>]*>{n}</td><td[^>]*>member</td><td[^>]*>([^<]+)</td>", cv).group(1))
        assert got == pytest.approx(s10["fusion"]["member_cllr"][n], rel=5e-3)


def test_run_scores_fusion_of_the_same_columns_gives_the_pipelines_fused_scores(fused_run, tmp_path):
    """One fusion for both paths: the members' scores written as run_scores' score_<detector> CSVs and fused
    by slr.fusion_scores.fuse_pools give stage 08's fused scores and choice."""
    from slr.fusion_scores import fuse_pools
    from slr.settings import Settings
    fused = fused_run[0]
    s10 = json.loads((fused / "10_kde_lr" / "summary.json").read_text())
    for pool in ("calib", "test"):
        with open(fused / "08_scores" / f"members_{pool}.csv", newline="") as fh:
            members = list(csv.DictReader(fh))
        with open(fused / "08_scores" / f"{pool}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        with open(tmp_path / f"{pool}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["person_id", "video_id", "label", "score_1", "score_2"])    # sorted: the pipeline's order
            for r, m in zip(rows, members):
                assert r["image_path"] == m["image_path"]
                w.writerow([r["person_id"], r["video_id"], r["label"], m["score_meso_inception4"], m["score_meso4"]])
    st = Settings(crossfit_folds=s10["settings"]["crossfit_folds"], seed=s10["settings"]["seed"])
    sets, choice = fuse_pools(tmp_path, ("calib", "test"), st)
    assert list(choice["member_cllr"].values()) == list(s10["fusion"]["member_cllr"].values())
    assert (choice["fusion_cllr"], choice["fusion_used"]) == (s10["fusion"]["fusion_cllr"], s10["fusion"]["fusion_used"])
    for pool in ("calib", "test"):
        want = [float(v) for v in _scores(fused / "08_scores" / f"{pool}.csv").values()]
        assert np.allclose(sets[pool].scores, want, rtol=0, atol=1e-12)


def test_a_fused_stage_08_goes_stale_when_a_members_dumps_change(tmp_path):
    from common.config import load_config
    from common.pipeline import current_state
    from common.stages import get
    members = []
    for k in ("a", "b"):
        for sub in ("02_split/split.json", "04_features/calib/x.npy"):
            (tmp_path / k / sub).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / k / sub).write_text(k)
        members.append(tmp_path / k)
    cfg = load_config("configs/uadfv.yaml", [f"output_dir={tmp_path / 'f'}", "slr.score=fusion",
                                             f"slr.fusion.members=[{members[0]},{members[1]}]"])
    before = current_state(cfg, get("08"))
    assert set(before["paths"]) >= {"slr.fusion.members[0]", "slr.fusion.members[1]"}
    assert "slr.fusion" in before["config"]
    (members[1] / "04_features" / "calib" / "x.npy").write_text("changed")
    after = current_state(cfg, get("08"))
    assert after["paths"]["slr.fusion.members[0]"] == before["paths"]["slr.fusion.members[0]"]
    assert after["paths"]["slr.fusion.members[1]"] != before["paths"]["slr.fusion.members[1]"]
    plain = load_config("configs/uadfv.yaml", [f"output_dir={tmp_path / 'f'}"])    # other runs: unchanged keys
    assert "slr.fusion" not in current_state(plain, get("08"))["config"]


def test_fused_casework_refuses_a_member_without_a_recorded_identity():
    """A fused system whose member dump predates the identity record cannot check that detector: refused
    (exit 2) before any detector loads, naming the member and the key."""
    from types import SimpleNamespace

    from casework.fused import FusedScorer
    from common.io import InputError
    system = SimpleNamespace(detector={"fusion": {}, "members": [
        {"name": "meso4", "run_dir": "/nowhere/meso4", "identity": {}}]})
    with pytest.raises(InputError, match=r"records no detector identity for member 0 \(meso4: /nowhere/meso4.*"
                                         r"slr\.fusion\.members\[0\]"):
        FusedScorer(system, cfg=None, system_dir="sys")


def test_fusion_cv_over_the_sources_of_a_source_map(fused_run, tmp_path):
    """slr.fusion.source_map: the penalty and the members are chosen by leave-one-source-out CV over calib's
    sources, exactly as choose_fusion does with those sources; a calib video without a source is refused."""
    from common.config import load_config
    from slr.fused_stage import stage08_fusion
    fused, members, sets, _ = fused_run
    paths, y, persons, m = _member_matrix(members, "calib")
    videos = np.array([p.split("/")[2] for p in paths])                  # <real|fake>/frames/<video>/<frame>
    source = {v: f"gen{i % 2}" for i, v in enumerate(sorted(set(videos)))}
    smap = tmp_path / "sources.json"
    smap.write_text(json.dumps(source))
    cfg = load_config("configs/uadfv.yaml", [*sets[1::2], f"slr.fusion.source_map={smap}"])
    out = tmp_path / "08"
    out.mkdir()
    s8 = stage08_fusion(cfg, out)
    s10 = json.loads((fused / "10_kde_lr" / "summary.json").read_text())
    _, want = choose_fusion(m, y, ["meso_inception4", "meso4"], persons, np.array([source[v] for v in videos]),
                            s10["settings"]["crossfit_folds"], s10["settings"]["seed"])
    got = s8["fusion"]
    assert got["cv"] == want["cv"] == "leave-one-source-out over 2 sources"
    assert got["member_cllr"] == pytest.approx(want["member_cllr"], abs=1e-12)
    assert got["fusion_cllr"] == pytest.approx(want["fusion_cllr"], abs=1e-12)
    del source[videos[0]]
    smap.write_text(json.dumps(source))
    with pytest.raises(InputError, match=rf"no source for calib video\(s\) {videos[0]}.*slr\.fusion\.source_map"):
        stage08_fusion(cfg, out)
