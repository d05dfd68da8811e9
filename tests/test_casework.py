"""Casework without a finished run: conditions (measurement, pool ranges, comparison), one cropper,
bad input (exit code and one line each), case folders, the statement's words, the PDF page.

The end-to-end casework tests on a demo run (pipeline agreement, JPEG 20 / 4x downscale outside,
re-runs, several faces, Chromium) are in test_casework_demo.py."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from casework import custody
from casework.command import main as evidence_main
from casework.inputs import read_questioned
from casework.outcome import EXIT_BAD_INPUT, EXIT_CASE_CONFLICT, CaseworkError
from casework.statement import NOT_FOR_REPORTING, headline, percentile, verbal
from common.conditions import (STD_LUMINANCE, blockiness, check_conditions, ijg_table, jpeg_quality, measure_frame,
                               measure_item, pool_conditions)
from common.config import load_config

REPO = Path(__file__).resolve().parents[1]
HYPS = {"hp": "the image is real", "hd": "the image is a deepfake"}


def portrait() -> np.ndarray:
    """The demo's public-domain portrait (matplotlib sample data), RGB."""
    import matplotlib.cbook as cbook
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, "JPEG", quality=quality)
    return b.getvalue()


# ------------------------------------------------------------------------------------------ conditions
def test_ijg_table_golden_values():
    assert np.array_equal(ijg_table(50), STD_LUMINANCE)                 # quality 50 = the standard table
    assert ijg_table(100).max() == 1                                     # scale 0: all ones
    assert ijg_table(75)[0] == 8 and ijg_table(25)[0] == 32             # (16*50+50)//100, (16*200+50)//100


@pytest.mark.parametrize("q", [10, 20, 35, 50, 75, 90, 98])
def test_jpeg_quality_recovered_from_pil_and_opencv_files(tmp_path, q):
    rgb = (np.random.default_rng(q).random((64, 64, 3)) * 255).astype(np.uint8)
    p = tmp_path / "a.jpg"
    p.write_bytes(jpeg_bytes(rgb, q))
    assert jpeg_quality(p)[0] == q
    p2 = tmp_path / "b.jpg"
    cv2.imwrite(str(p2), rgb, [cv2.IMWRITE_JPEG_QUALITY, q])           # libjpeg inside OpenCV too
    assert jpeg_quality(p2)[0] == q


def test_jpeg_quality_not_estimable_for_png_and_video(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    q, note = jpeg_quality(tmp_path / "a.png")
    assert q is None and "PNG" in note and "lossless" in note
    q, note = jpeg_quality(tmp_path / "v.mp4")
    assert q is None and "video" in note


def test_blockiness_rises_as_jpeg_quality_falls():
    face = portrait()[100:420, 100:420]
    vals = {}
    for q in (95, 50, 20, 10):
        dec = np.asarray(Image.open(io.BytesIO(jpeg_bytes(face, q))))
        vals[q] = blockiness(dec)
    raw = blockiness(face)
    assert 0.8 < raw < 1.2                                              # an unblocked image: about 1
    assert vals[95] < vals[50] < vals[20] < vals[10]
    assert vals[20] > 1.5
    assert blockiness(np.zeros((10, 10))) is None                       # too small
    assert blockiness(np.full((64, 64), 7.0)) is None                   # flat


def test_measure_frame_and_item():
    frame = np.zeros((200, 300, 3), np.uint8)
    m = measure_frame(frame, (10, 20, 110, 70))
    assert m["image_width_px"] == 300 and m["image_height_px"] == 200
    assert m["face_box_px"] == pytest.approx(np.sqrt(100 * 50))
    item = measure_item(Path("x.mp4"), "video", [m, m], frames_read=6, track_length=2)
    assert item["frames_per_video"]["value"] == 6 and item["track_length"]["value"] == 2
    assert item["jpeg_quality"]["value"] is None and "video" in item["jpeg_quality"]["note"]
    img = measure_item(Path("x.png"), "image", [m])
    assert img["frames_per_video"]["value"] is None and "single image" in img["frames_per_video"]["note"]


def _write_manifest(root: Path, rows: list[dict]):
    from preprocessing.crop import MANIFEST_COLUMNS
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in MANIFEST_COLUMNS})


def test_pool_conditions_from_a_manifest_and_its_sources(tmp_path):
    inp = tmp_path / "in"
    (inp / "real").mkdir(parents=True)
    face = cv2.resize(portrait(), (160, 160))
    # two "videos" as JPEG still images (quality 60 and 80) and one MJPG video of 4 frames
    (inp / "real" / "a.jpg").write_bytes(jpeg_bytes(face, 60))
    (inp / "real" / "b.jpg").write_bytes(jpeg_bytes(face, 80))
    w = cv2.VideoWriter(str(inp / "real" / "c.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 160))
    for _ in range(4):
        w.write(cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    w.release()
    (inp / "real" / "e").mkdir()                                            # a frame folder of JPEGs (q 40)
    for i in (0, 5):
        (inp / "real" / "e" / f"{i:03d}.jpg").write_bytes(jpeg_bytes(face, 40))
    box = dict(box_left=20, box_top=30, box_right=120, box_bottom=130, frame_width=160, frame_height=160)
    rows = [dict(video_id="a", label=0, source="real/a.jpg", frame_idx=0, status="ok", crop="x", **box),
            dict(video_id="b", label=0, source="real/b.jpg", frame_idx=0, status="ok", crop="x",
                 **{**box, "box_right": 140, "box_bottom": 150}),
            *[dict(video_id="c", label=0, source="real/c.avi", frame_idx=i, status="ok" if i < 3 else "no_face",
                   crop="x" if i < 3 else "", **box) for i in range(4)],
            dict(video_id="d", label=0, source="real/d.avi", frame_idx="", status="unreadable")]
    _write_manifest(tmp_path / "ds", rows)
    rows += [dict(video_id="e", label=0, source="real/e", frame_idx=i, status="ok", crop="x", **box) for i in (0, 5)]
    _write_manifest(tmp_path / "ds", rows)
    e = pool_conditions(tmp_path / "ds", videos=["e"], input_root=inp)["ranges"]
    assert (e["jpeg_quality"]["min"], e["jpeg_quality"]["max"], e["blockiness"]["n"]) == (40, 40, 2)
    pc = pool_conditions(tmp_path / "ds", videos=["a", "b", "c"], input_root=inp)
    r = pc["ranges"]
    assert pc["n_videos"] == 3 and pc["n_frames"] == 6
    assert (r["image_width_px"]["min"], r["image_width_px"]["max"]) == (160, 160)
    assert r["face_box_px"]["min"] == pytest.approx(100) and r["face_box_px"]["max"] == pytest.approx(120)
    assert (r["jpeg_quality"]["min"], r["jpeg_quality"]["max"]) == (60, 80)   # the video has no table
    assert (r["frames_per_video"]["min"], r["frames_per_video"]["max"]) == (1, 4)
    assert (r["track_length"]["min"], r["track_length"]["max"]) == (1, 3)
    assert r["blockiness"]["n"] == 5 and r["blockiness"]["min"] > 0.5
    # only one video; no sources; no manifest
    assert pool_conditions(tmp_path / "ds", videos=["c"], input_root=inp)["ranges"]["jpeg_quality"]["n"] == 0
    nos = pool_conditions(tmp_path / "ds", videos=["a"], input_root=None)
    assert nos["ranges"]["blockiness"]["n"] == 0 and "not available" in nos["notes"]["blockiness"]
    none = pool_conditions(tmp_path / "nothing")
    assert none["ranges"]["face_box_px"]["n"] == 0 and "no stage-01 manifest" in none["notes"]["face_box_px"]


VALIDATED = {"ranges": {"image_width_px": {"min": 320, "max": 320}, "face_box_px": {"min": 120.0, "max": 220.0},
                        "jpeg_quality": {"min": None, "max": None, "n": 0}, "blockiness": {"min": 1.0, "max": 1.5}},
             "notes": {"jpeg_quality": "not estimable for this pool's sources (video)"}}


def test_check_conditions_inside_outside_not_checked():
    measured = {"image_width_px": {"value": 320}, "face_box_px": {"value": 119.0},
                "jpeg_quality": {"value": 20, "note": "IJG table match"}, "blockiness": {"value": 1.5},
                "track_length": {"value": None, "note": "not applicable: a single image"}}
    c = check_conditions(measured, VALIDATED)
    names = {k: [e["name"] for e in v] for k, v in c.items()}
    assert names["inside"] == ["image_width_px", "blockiness"]           # on the range's end: inside
    assert names["outside"] == ["face_box_px"]
    assert names["not_checked"] == ["jpeg_quality", "track_length"]
    assert "video" in c["not_checked"][0]["reason"]
    assert check_conditions(measured, None)["outside"] == []              # no conditions recorded: nothing checked
    assert len(check_conditions(measured, None)["not_checked"]) == len(measured)


def test_check_conditions_honours_validated_degradations():
    v = {**VALIDATED, "validated_degradations": {"jpeg": {"min_quality": 50}, "blur": {"max_sigma": 2}}}
    low = check_conditions({"jpeg_quality": {"value": 20}}, v)
    assert [e["name"] for e in low["outside"]] == ["jpeg_quality"] and "robustness" in low["outside"][0]["reason"]
    ok = check_conditions({"jpeg_quality": {"value": 70}}, v)
    assert [e["name"] for e in ok["inside"]] == ["jpeg_quality"]
    assert any(e["name"] == "validated_degradations.blur" for e in ok["not_checked"])
    # a calib JPEG range [80, 95] and robustness down to 50: 60 is inside, 40 outside
    v2 = {"ranges": {"jpeg_quality": {"min": 80, "max": 95}}, "validated_degradations": {"jpeg": {"min_quality": 50}}}
    assert check_conditions({"jpeg_quality": {"value": 60}}, v2)["inside"]
    assert check_conditions({"jpeg_quality": {"value": 40}}, v2)["outside"]
    # a null bound (nothing beyond clean validated): only the calib range is inside; no range: outside
    v3 = {"ranges": {"jpeg_quality": {"min": 80, "max": 95}}, "validated_degradations": {"jpeg": {"min_quality": None}}}
    assert check_conditions({"jpeg_quality": {"value": 90}}, v3)["inside"]
    assert check_conditions({"jpeg_quality": {"value": 60}}, v3)["outside"]
    v4 = {**VALIDATED, "validated_degradations": {"jpeg": {"min_quality": None, "status": "clean fails"}}}
    assert check_conditions({"jpeg_quality": {"value": 90}}, v4)["outside"]
    # a validated downscale by 0.5 extends the size ranges down to half the calib minimum
    v5 = {**VALIDATED, "validated_degradations": {"downscale": {"min_factor": 0.5}}}
    m = {"image_width_px": {"value": 160}, "face_box_px": {"value": 61.0}}
    c = check_conditions(m, v5)
    assert [e["name"] for e in c["inside"]] == ["image_width_px", "face_box_px"]
    assert c["inside"][1]["range"] == [60.0, 220.0]
    assert [e["name"] for e in check_conditions({"image_width_px": {"value": 159}}, v5)["outside"]] == ["image_width_px"]
    assert check_conditions(m, VALIDATED)["outside"]                       # without it: outside


# ------------------------------------------------------------------------------------------ one cropper
def test_casework_and_stage01_build_the_same_cropper(monkeypatch):
    from casework import faces as F
    from preprocessing import crop as C
    cfg = load_config("configs/demo.yaml", ["preprocessing.margin=1.25", "preprocessing.size=192"])
    seen = []
    real = C.build_cropper
    monkeypatch.setattr(C, "build_cropper", lambda opts: seen.append(opts) or real(opts))
    opts = F.crop_options(cfg)
    assert opts == C.options_from_config(cfg.section("preprocessing"))      # one options object
    ours = F.build_cropper(opts)
    C._init_worker(C.options_from_config(cfg.section("preprocessing")), "/tmp", "/tmp", "/tmp")  # stage 01's worker
    theirs = C._WORKER["cropper"]
    assert len(seen) == 2 and seen[0] == seen[1]                             # both through build_cropper
    for attr in ("size", "margin", "points", "upsample", "detect_max_width", "kind", "landmarks_path", "n_points"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert ours.size == 192 and ours.margin == 1.25
    img = portrait()
    a, b = ours.detect(img), theirs.detect(img)
    assert [d.box for d in a] == [d.box for d in b] and len(a) == 1
    assert np.array_equal(ours.align_face(img, a[0]).crop, theirs.align_face(img, b[0]).crop)


def test_track_faces_links_faces_across_frames():
    from casework.faces import track_faces

    class Det:
        def __init__(self, box):
            self.box = box

        @property
        def area(self):
            return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])

    class Cropper:
        """Two faces drifting right plus a tiny one (< half the largest): listed, not assessed."""
        def detect(self, frame):
            k = int(frame[0, 0, 0])
            return [Det((10 + k, 10, 110 + k, 110)), Det((300 + k, 20, 390 + k, 110)), Det((200, 200, 220, 220))]

        def align_face(self, frame, det):
            class A:
                pass
            a = A()
            a.box, a.crop = det.box, np.zeros((4, 4, 3), np.uint8)
            return a

    frames = [(i, np.full((400, 400, 3), 3 * i, np.uint8)) for i in range(4)]
    tracks = track_faces(frames, Cropper(), min_fraction=0.5)
    assert len(tracks) == 3 and tracks[0].frames == [0, 1, 2, 3]
    assert tracks[0].not_assessed is None and tracks[1].not_assessed is None
    assert tracks[2].boxes == [(200, 200, 220, 220)] * 4 and tracks[2].fractions == [0.04] * 4
    assert "4 % of the area of the largest face" in tracks[2].not_assessed
    assert "evidence.min_face_fraction = 0.5" in tracks[2].not_assessed
    assert all(b[0] < 200 for b in tracks[0].boxes) and all(b[0] >= 300 for b in tracks[1].boxes)
    assert tracks[0].measures[0]["face_box_px"] == pytest.approx(100) and tracks[0].first_frame is frames[0][1]


# ------------------------------------------------------------------------------------------ bad input
def _bad_inputs(tmp: Path) -> dict:
    (tmp / "folder").mkdir()
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "text.mp4").write_text("this is not a video\n")
    (tmp / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    locked = tmp / "locked.png"
    cv2.imwrite(str(locked), np.zeros((8, 8, 3), np.uint8))
    locked.chmod(0)
    return {"folder": (tmp / "folder", "is a folder"), "missing": (tmp / "missing.mp4", "no such file"),
            "zero bytes": (tmp / "empty.png", "empty (0 bytes)"),
            "not a video": (tmp / "text.mp4", "not an image or video"),
            "not an image": (tmp / "broken.png", "not an image or video"),
            "unreadable": (locked, "cannot be read")}


def test_bad_inputs_exit_5_with_one_line(tmp_path, capsys, monkeypatch):
    import os

    from casework import inputs
    cases = _bad_inputs(tmp_path)
    locked = str(cases["unreadable"][0])
    if os.access(locked, os.R_OK):                                     # root reads a mode-000 file anyway
        real = os.access
        monkeypatch.setattr(inputs.os, "access", lambda p, m: False if str(p) == locked else real(p, m))
    for name, (path, words) in cases.items():
        code = evidence_main(["--config", "configs/demo.yaml", "--set", f"output_dir={tmp_path / 'run'}",
                              "--input", str(path), "--output", str(tmp_path / "cases")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == EXIT_BAD_INPUT, (name, err)
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], (name, err)
    assert not (tmp_path / "cases").exists()                                # nothing written for bad input


def test_bad_input_through_the_script_no_traceback(tmp_path):
    (tmp_path / "text.mp4").write_text("not a video")
    p = subprocess.run([sys.executable, "evidence.py", "--config", "configs/demo.yaml", "--input",
                        str(tmp_path / "text.mp4")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == EXIT_BAD_INPUT, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0


def test_truncated_video_read_on_what_was_read(tmp_path):
    p = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 96))
    rng = np.random.default_rng(0)
    for _ in range(20):
        w.write((rng.random((96, 96, 3)) * 255).astype(np.uint8))
    w.release()
    full = read_questioned(p, 10, None)
    assert (full.kind, full.frames_read, full.frames_expected, full.notes) == ("video", 10, 10, [])
    data = p.read_bytes()
    (tmp_path / "t.avi").write_bytes(data[: len(data) // 2])
    q = read_questioned(tmp_path / "t.avi", 10, None)
    assert q.container_frames == 20 and q.frames_expected == 10 and 0 < q.frames_read < 10
    assert "truncated" in q.notes[0] and f"only {q.frames_read} could be read" in q.notes[0]


def test_grayscale_and_rgba_are_stated(tmp_path):
    rgb = cv2.resize(portrait(), (64, 64))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    q = read_questioned(tmp_path / "g.png", 4, None)
    assert q.frames[0][1].shape == (64, 64, 3) and np.array_equal(q.frames[0][1][..., 0], gray)
    assert "grayscale" in q.notes[0]
    rgba = np.dstack([cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), np.full((64, 64), 128, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    q = read_questioned(tmp_path / "a.png", 4, None)
    assert np.array_equal(q.frames[0][1], rgb) and any("alpha" in n and "removed" in n for n in q.notes)


# ------------------------------------------------------------------------------------------ case folders
def test_case_folder_names_and_conflicts(tmp_path):
    sha_a, sha_b = "a" * 64, "b" * 64
    fa = custody.case_folder(tmp_path, Path("/x/q 1.png"), sha_a)
    assert fa.name == "q_1.png_aaaaaaaaaaaa"
    assert custody.case_folder(tmp_path, Path("/x/q.png"), sha_a, "case-7").name == "case-7"
    with pytest.raises(CaseworkError):
        custody.case_folder(tmp_path, Path("q.png"), sha_a, "../escape")
    assert custody.check_case_folder(fa, sha_a) is None                   # new
    fa.mkdir()
    with pytest.raises(CaseworkError) as e:
        custody.check_case_folder(fa, sha_a)                               # not a case folder
    assert e.value.code == EXIT_CASE_CONFLICT
    (fa / "evidence.json").write_text(json.dumps({"input": {"sha256": sha_a, "path": "q"}, "created_utc": "T"}))
    assert custody.check_case_folder(fa, sha_a) == "T"                     # same input: a re-run
    with pytest.raises(CaseworkError, match="another input") as e:
        custody.check_case_folder(fa, sha_b)
    assert e.value.code == EXIT_CASE_CONFLICT


def test_code_version_and_config_hash():
    assert custody.code_version().startswith(("git ", "package "))
    a = custody.config_sha256(load_config("configs/demo.yaml"))
    assert a == custody.config_sha256(load_config("configs/demo.yaml")) and len(a) == 64
    assert a != custody.config_sha256(load_config("configs/demo.yaml", ["evidence.min_face_fraction=0.4"]))


# ------------------------------------------------------------------------------------------ words
ENFSI = load_config("configs/demo.yaml").get("evidence.verbal_scale")


def test_headline_and_percentile():
    words = verbal(2.5, ENFSI, HYPS)
    assert words == "moderately strong support for the proposition that the image is real"
    h = headline(10 ** 2.5, 2.5, words, HYPS)
    assert "316 times more probable if the image is real than if the image is a deepfake" in h
    assert "log10 LR = +2.50" in h
    h = headline(0.01, -2.0, verbal(-2.0, ENFSI, HYPS), HYPS)
    assert "100 times more probable if the image is a deepfake" in h
    h = headline(1.0, 0.0, verbal(0.0, ENFSI, HYPS), HYPS)
    assert h.startswith("The findings are about equally probable if the image is real and if the image is a deepfake")
    assert percentile(np.array([1.0, 2.0, 3.0, 4.0]), 2.0) == 50.0 and percentile(np.array([]), 1) is None
    assert NOT_FOR_REPORTING == "not for reporting"


# ------------------------------------------------------------------------------------------ the PDF
def _record(tmp: Path) -> tuple[dict, dict]:
    crop = cv2.resize(portrait(), (128, 128))
    res = {"face": 1, "level": "frame", "frames": [0], "box": [1, 2, 3, 4], "bounds_log10": [-1.2, 1.8],
           "conditions": {"inside": [{"name": "image_width_px", "value": 320, "range": [320, 320], "reason": "ok"}],
                          "outside": [], "not_checked": []},
           "notes": [], "warning": None, "level_text": "frame level", "log10_lr_bounded": 1.23,
           "lr_bounded": 10 ** 1.23, "lr_bounded_text": "17", "verbal": "moderate support",
           "statement": "The findings are 17 times more probable ...", "annex": {"score": {"value": 0.5,
                                                                                       "label": NOT_FOR_REPORTING}}}
    rec = {"input": {"path": str(tmp / "q.png"), "sha256": "c" * 64, "size_bytes": 10, "kind": "image",
                     "frames_read": 1, "frames_expected": 1},
           "system": {"lr_system_sha256": "d" * 64, "checkpoint_sha256": "e" * 64, "config_sha256": "f" * 64,
                      "code_version": "git test"}, "created_utc": "2026-12-01T00:00:00Z", "command_line": "x",
           "case_id": "q.png_cccccccccccc", "statement": "1 face(s) found", "notes": [],
           "propositions": {**HYPS, "population": "adults in social-media videos"}, "verbal_scale_source": "ENFSI 2015",
           "exit_code": 0, "results": [res]}
    return rec, {1: crop}


def pdf_page_png(pdf: Path, out_prefix: Path) -> np.ndarray:
    """Page 1 of ``pdf`` as an RGB array, by poppler's pdftoppm (Debian poppler-utils)."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        pytest.fail("pdftoppm not found: apt-get install -y poppler-utils (make setup-dev does)")
    subprocess.run([exe, "-r", "60", "-png", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(out_prefix)],
                   check=True, timeout=60)
    return cv2.cvtColor(cv2.imread(f"{out_prefix}.png"), cv2.COLOR_BGR2RGB)


def pdf_text(pdf: Path) -> str:
    """Page 1's text by poppler's pdftotext."""
    exe = shutil.which("pdftotext")
    if exe is None:
        pytest.fail("pdftotext not found: apt-get install -y poppler-utils (make setup-dev does)")
    return subprocess.run([exe, "-f", "1", "-l", "1", str(pdf), "-"], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def test_pdf_summary_is_one_drawn_page(tmp_path):
    from casework.report import write_case
    rec, crops = _record(tmp_path)
    write_case(tmp_path / "case", rec, crops, (portrait(), [(1, (100, 100, 400, 400))]), None, {})
    pdf = (tmp_path / "case" / "evidence.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 1
    assert b"CreationDate" not in pdf
    page = pdf_page_png(tmp_path / "case" / "evidence.pdf", tmp_path / "p1")
    assert page.shape[0] > page.shape[1] > 400                             # A4 portrait at 60 dpi
    dark = (page.mean(axis=2) < 128).mean()
    assert 0.005 < dark < 0.5 and page.std() > 10                          # text and a crop drawn, not blank
    assert "LR = 17" in pdf_text(tmp_path / "case" / "evidence.pdf")       # the bounded value is on the page
    html = (tmp_path / "case" / "evidence.html").read_text()
    assert "LR = 17" in html and "id='annex'" not in html and 'id="annex"' in html
    assert html.count("data:image/png;base64,") == 2                       # crop + overview
    # the same record again: byte-identical files
    write_case(tmp_path / "case2", rec, crops, (portrait(), [(1, (100, 100, 400, 400))]), None, {})
    for name in ("evidence.pdf", "evidence.html", "evidence.json", "face_1.png", "overview.png"):
        assert (tmp_path / "case" / name).read_bytes() == (tmp_path / "case2" / name).read_bytes(), name


def test_missing_or_changed_lr_system_is_exit_2(tmp_path, capsys):
    from casework.outcome import EXIT_CONFIG
    q = tmp_path / "q.png"
    cv2.imwrite(str(q), cv2.cvtColor(cv2.resize(portrait(), (160, 200)), cv2.COLOR_RGB2BGR))
    args = ["--config", "configs/demo.yaml", "--set", f"output_dir={tmp_path / 'run'}", "--input", str(q),
            "--output", str(tmp_path / "cases")]
    assert evidence_main(args) == EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no saved LR system" in err[0] and "stage 10" in err[0]
    # a saved system with one file changed: refused, naming the file
    from slr.io import ScoreSet
    from slr.system import LRSystem
    rng = np.random.default_rng(0)
    n = 60
    s = ScoreSet(np.r_[rng.normal(1, 1, n), rng.normal(-1, 1, n)], np.r_[np.zeros(n, int), np.ones(n, int)],
                 np.array([f"v{i % 12}{'f' if i >= n else ''}" for i in range(2 * n)]), None, "synthetic",
                 person_ids=np.array([f"p{i % 12}" for i in range(2 * n)]))
    d = tmp_path / "sys"
    LRSystem.fit({"frame": s}, {"crossfit_folds": 3, "bootstrap_n": 0}, "logit").save(d)
    (d / "system.json").write_text((d / "system.json").read_text().replace('"logit"', '"logit" '))
    assert evidence_main([*args, "--set", f"evidence.lr_system={d}"]) == EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "system.json" in err[0] and "SHA-256" in err[0]
    assert not (tmp_path / "cases").exists()
