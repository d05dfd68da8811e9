"""Stage 15b (issue 18 item 8) on the MesoNet authors' four test faces arranged as external sets:
scores and LLRs are stage 04's detector pass + the saved system's, the conditions check accepts
exactly the frames inside the validated ranges (crops' own JPEG quality; a stage-01 manifest's
frame size), the figures are those of the accepted frames with person-cluster intervals, and the
report's validation matrix gets one generalisation row per set and metric."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from common.config import load_config
from common.io import read_csv
from common.stages import stage_dir
from evaluation import generalisation as G
from evaluation.report import judge_matrix, load_run
from slr import metrics as M
from slr.io import ScoreSet
from slr.settings import Settings
from slr.system import LRSystem

FACES = Path("/work/shared/weights/mesonet/test_images")
if not FACES.is_dir():
    FACES = Path(__file__).resolve().parents[2] / "shared" / "weights" / "mesonet" / "test_images"
JPEG_Q = {"df00204": 75, "df01254": 75, "real00240": 95, "real00772": 75}   # IJG table match of each file


def _arrange(root: Path, manifest_widths: dict | None = None) -> Path:
    """<root>/<real|fake>/frames/<image stem>/000.jpg (each face its own video and person)."""
    rows = []
    for sub, label in (("real", "real"), ("df", "fake")):
        for f in sorted((FACES / sub).glob("*.jpg")):
            d = root / label / "frames" / f.stem
            d.mkdir(parents=True)
            shutil.copy(f, d / "000.jpg")
            rows.append((f"{label}/frames/{f.stem}/000.jpg", f.stem))
    if manifest_widths is not None:
        head = "video_id,frame_idx,crop,source,frame_width,frame_height,box_left,box_top,box_right,box_bottom\n"
        (root / "manifest.csv").write_text(head + "".join(
            f"{v},0,{c},{v}.mp4,{manifest_widths.get(v, 320)},240,10,10,110,110\n" for c, v in rows))
    return root


def _setup(tmp: Path, external: list) -> tuple:
    """A config (meso4 at 64 px, seeded random weights), a small saved system on synthetic logits
    with validated ranges, and stage 15b run on ``external``."""
    if not FACES.is_dir():
        pytest.fail(f"MesoNet test faces not found at {FACES}: put ../shared beside the checkout")
    cfg_path = tmp / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "seed": 5, "output_dir": str(tmp / "out"), "device": "cpu",
        "model": {"name": "meso4", "input_size": 64}, "features": {"checkpoint": str(tmp / "det.pt"), "batch_size": 4},
        "slr": {"bootstrap": {"n": 200}},
        "report": {"criteria": [{"metric": "cllr", "max": 1.0}, {"metric": "misleading_hd", "max": 0.2},
                                {"metric": "elub_range", "min": 1.0}]},
        "preprocessing": {"frames_per_video": 3}, "validation": {"external": external}}))
    cfg = load_config(cfg_path)
    from training.trainer import build_detector
    torch.manual_seed(0)
    torch.save(build_detector(cfg).state_dict(), tmp / "det.pt")
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 40)
    persons = np.repeat(np.arange(10), 8).astype(str)
    scores = rng.normal(0, 0.02, 80) + np.where(labels == 0, -0.01, 0.01)
    calib = ScoreSet(scores, labels, np.char.add(persons, labels.astype(str)), None, "synthetic", person_ids=persons)
    system = LRSystem.fit({"frame": calib}, Settings(model="logistic", crossfit_folds=2, bootstrap_n=0), "logit",
                          conditions={"ranges": {"jpeg_quality": {"min": 70, "max": 80, "n": 10},
                                                 "image_width_px": {"min": 200, "max": 400, "n": 10},
                                                 "image_height_px": {"min": 200, "max": 400, "n": 10}}})
    system.save(stage_dir(cfg, "10") / "system")
    out = stage_dir(cfg, "15b", create=True)
    return cfg, G.run(cfg, out, progress=False), out, system


@pytest.fixture(scope="module")
def run15b(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gen")
    return _setup(tmp, [{"name": "crops", "root": str(_arrange(tmp / "faces"))},
                        {"name": "framed", "root": str(_arrange(tmp / "framed", manifest_widths={"df01254": 1000}))}])


def test_scores_and_llrs_are_the_detector_pass_and_the_saved_system(run15b):
    cfg, summary, out, system = run15b
    from evaluation.robustness import read_crop
    from training.dump import FrameScorer

    rows = read_csv(out / "crops_lr.csv")
    crops = [read_crop(Path(summary["sets"]["crops"]["root"]) / p) for p in rows["image_path"]]
    logit = FrameScorer(cfg).run(crops)["logit"]
    np.testing.assert_array_equal(np.asarray(rows["score"], float), logit)
    np.testing.assert_array_equal(np.asarray(rows["llr"], float), system.llr(logit))
    assert summary["system"]["sha256"] == LRSystem.load(stage_dir(cfg, "10") / "system").sha256


def test_conditions_check_accepts_exactly_the_frames_inside(run15b):
    _, summary, out, _ = run15b
    crops = read_csv(out / "crops_lr.csv")        # no manifest: the crop's own JPEG quality is compared
    want = {v: int(70 <= JPEG_Q[v] <= 80) for v in JPEG_Q}
    assert {v: int(a) for v, a in zip(crops["video_id"], crops["accepted"])} == want
    assert summary["sets"]["crops"]["n_accepted"] == 3 and summary["sets"]["crops"]["outside_by_condition"] == \
        {"jpeg_quality": 1}
    framed = read_csv(out / "framed_lr.csv")      # manifest: the source frame's width; JPEG not measurable
    assert {v: int(a) for v, a in zip(framed["video_id"], framed["accepted"])} == \
        {v: int(v != "df01254") for v in JPEG_Q}
    assert summary["sets"]["framed"]["outside_by_condition"] == {"image_width_px": 1}


def test_figures_are_those_of_the_accepted_frames_with_person_intervals(run15b):
    _, summary, out, _ = run15b
    rows = read_csv(out / "crops_lr.csv")
    ok = np.asarray(rows["accepted"], int) == 1
    llr, lab = np.asarray(rows["llr"], float)[ok], np.asarray(rows["label"], int)[ok]
    f = summary["sets"]["crops"]["levels"]["frame"]
    assert f["n_hp"] == 1 and f["n_hd"] == 2 and f["n_persons"] == 3
    assert f["cllr"] == pytest.approx(M.cllr(llr[lab == 0], llr[lab == 1]), abs=1e-12)
    assert f["cllr_min"] == pytest.approx(M.cllr_min(llr[lab == 0], llr[lab == 1]), abs=1e-12)
    for m in ("cllr", "cllr_min", "misleading_hp", "misleading_hd"):
        lo, hi = f["ci95"][m]
        assert lo <= f[m] <= hi
    assert summary["sets"]["crops"]["all_items"]["frame"]["n_hp"] == 2


def test_validation_matrix_gets_a_generalisation_row_per_set(run15b):
    cfg, summary, out, _ = run15b
    rows = [r for r in judge_matrix(cfg.get("report.criteria"), load_run(cfg.output_dir, cfg))
            if r["characteristic"].startswith("generalisation")]
    assert sorted((r["pool"].split(" (")[0], r["metric"]) for r in rows) == sorted(
        (f"external: {n}", m) for n in ("crops", "framed") for m in ("cllr", "misleading_hd"))
    r = next(r for r in rows if r["pool"].startswith("external: crops") and r["metric"] == "cllr")
    f = summary["sets"]["crops"]["levels"]["frame"]
    assert r["value"] == f["cllr"] and r["interval"] == f["ci95"]["cllr"] and "3 of 4 frames accepted" in r["pool"]
    assert r["decision"] == ("pass" if f["ci95"]["cllr"][1] <= 1.0 else "fail")


@pytest.mark.slow      # stage 01 on six demo videos: about 15 s on a quiet core
def test_a_set_of_videos_is_cropped_by_stage_01_first(tmp_path):
    from preprocessing.demo_videos import DemoOptions, build_demo

    build_demo(tmp_path / "videos", 3, DemoOptions.from_section({"persons": 3, "frames": 3}), progress=False)
    _, summary, out, _ = _setup(tmp_path, [{"name": "videos", "root": str(tmp_path / "vroot"),
                                            "input": str(tmp_path / "videos")}])
    root = Path(summary["sets"]["videos"]["root"])
    man = read_csv(root / "manifest.csv")
    crops = sorted(c for c in man["crop"] if c)
    rows = read_csv(out / "videos_lr.csv")
    assert sorted(rows["image_path"]) == crops and len(crops) >= 12          # 6 videos x 3 frames, faces found
    assert set(rows["video_id"]) == {"0000", "0001", "0002", "0000_fake", "0001_fake", "0002_fake"}
    assert set(rows["person_id"]) == {"0000", "0001", "0002"}                 # the UADFV rule
    # the demo frames are 320 px, inside [200, 400]; video sources have no JPEG table: all accepted
    assert summary["sets"]["videos"]["n_accepted"] == len(crops)
