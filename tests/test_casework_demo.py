"""Casework on a finished demo run (the session's ``demo`` fixture of conftest.py, built once):

- the command's LLR for a frame the pipeline scored is bit-identical to stage 10's test row, inside
  the system's bounds, and its score to stage 08's;
- a frame re-compressed at JPEG quality 20 and one downscaled 4x are outside the validated
  conditions: exit 4 and no LR without the override, the LR with the warning above it with it;
- two inputs with one name -> two case folders; the same input twice -> one folder, the second run
  says "re-run" and the files are identical but for the time; another input into that folder -> 6;
- several faces -> one result each + the numbered overview; a short video track -> frame level,
  said so; a full-length track -> video level; a truncated video -> scored on what was read, said;
- grayscale and RGBA items scored, the conversion stated; no face -> exit 3 and one line;
- the HTML in headless Chromium and the PDF page are not blank and show the bounded value.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from casework.command import main as evidence_main
from casework.outcome import EXIT_CASE_CONFLICT, EXIT_NO_FACE, EXIT_OK, EXIT_OUTSIDE, EXIT_UNVALIDATED
from common.io import read_csv
from test_casework import pdf_page_png, pdf_text

CONFIG = "configs/demo.yaml"


def _frame_of(out: Path, image_path: str) -> np.ndarray:
    """The source video frame behind a stage-01 crop ``<real|fake>/frames/<video>/<idx>.png`` (RGB)."""
    from preprocessing.video import read_video_frames
    label, _, video, name = Path(image_path).parts
    src = next((out / "00_demo_videos" / label).glob(f"{video}.*"))
    (_, frame), = read_video_frames(src, [int(Path(name).stem)])
    return frame


def _png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _ev(demo, capsys, path: Path, cases: Path, *extra) -> tuple[int, str, str, dict | None]:
    out, overrides, _, _ = demo
    code = evidence_main(["--config", CONFIG, *overrides, "--input", str(path), "--output", str(cases), *extra])
    cap = capsys.readouterr()
    folders = sorted(cases.glob("*/evidence.json"), key=lambda p: p.stat().st_mtime) if cases.is_dir() else []
    rec = json.loads(folders[-1].read_text()) if folders else None
    return code, cap.out, cap.err, rec


def _system(out: Path, overrides: list):
    """The LR system casework loads for this run (stage 15's when current, else stage 10's)."""
    from casework.command import settings, system_dir
    from common.config import load_config
    from slr.system import LRSystem
    cfg = load_config(CONFIG, [o for o in overrides if o != "--set"])
    return LRSystem.load(system_dir(cfg, settings(cfg)))


@pytest.fixture(scope="module")
def test_rows(demo):
    out = demo[0]
    scores = read_csv(out / "08_scores" / "test.csv")
    lrs = read_csv(out / "10_kde_lr" / "test_lr.csv")
    return scores, lrs


def test_pipeline_agreement_bit_identical_and_bounded(demo, test_rows, tmp_path, capsys):
    out, overrides = demo[0], demo[1]
    scores, lrs = test_rows
    system = _system(out, overrides)
    lo, hi = system.bounds_log10("frame")
    labels = [int(v) for v in scores["label"]]
    picked = [labels.index(0), labels.index(1), len(labels) - 1]       # a real, a fake, the last test frame
    for i in picked:
        image_path = scores["image_path"][i]
        assert lrs["image_path"][i] == image_path
        q = _png(tmp_path / f"q{i}" / "q.png", _frame_of(out, image_path))
        code, stdout, err, rec = _ev(demo, capsys, q, tmp_path / "cases", "--allow-outside-conditions")
        assert code == EXIT_OK, (stdout, err)
        (r,) = rec["results"]
        assert r["annex"]["score"]["value"] == float(scores["score"][i])              # bit-identical to stage 08
        assert r["log10_lr_bounded"] == float(lrs["llr"][i])                          # bit-identical to stage 10
        assert r["annex"]["log10_lr_unbounded"]["value"] == float(lrs["llr_calibrated"][i])  # before the bounds too
        assert lo <= r["log10_lr_bounded"] <= hi and r["bounds_log10"] == [lo, hi]
        assert r["log10_lr_bounded"] == float(np.clip(r["annex"]["log10_lr_unbounded"]["value"], lo, hi))
        assert r["lr_bounded"] == 10.0 ** r["log10_lr_bounded"]
        assert rec["system"]["lr_system_sha256"] == system.sha256
        assert all(v["label"] == "not for reporting" for v in r["annex"].values() if isinstance(v, dict))
        assert set(rec) >= {"input", "system", "created_utc", "command_line", "results"}
        assert set(rec["input"]) == {"path", "sha256", "size_bytes", "kind", "frames_read", "frames_expected"}
        assert set(rec["system"]) == {"lr_system_sha256", "checkpoint_sha256", "config_sha256", "code_version",
                                      "detector"}
        assert rec["system"]["detector"] == system.detector and system.detector["name"] == "meso4"   # issue 21
        assert {"face", "statement", "log10_lr_bounded", "lr_bounded", "bounds_log10", "verbal", "conditions",
                "annex"} <= set(r)


def test_genuine_test_frames_mostly_inside_the_conditions(demo, test_rows):
    """The conditions' false-alarm rate on genuine test frames (same source as calib): at most 1/4."""
    from common.conditions import check_conditions, measure_frame
    from preprocessing.video import read_video_frames
    out = demo[0]
    system = _system(out, demo[1])
    man = read_csv(out / "01_faces" / "manifest.csv")
    test = set(test_rows[0]["image_path"])
    n = outside = 0
    for k, crop in enumerate(man["crop"]):
        if crop not in test:
            continue
        (_, frame), = read_video_frames(out / "00_demo_videos" / man["source"][k], [int(man["frame_idx"][k])])
        box = [int(man[c][k]) for c in ("box_left", "box_top", "box_right", "box_bottom")]
        c = check_conditions({name: {"value": v} for name, v in measure_frame(frame, box).items()}, system.conditions)
        n += 1
        outside += bool(c["outside"])
        assert {e["name"] for e in c["inside"]} >= {"image_width_px", "image_height_px"}
    assert n == len(test) and outside <= n / 4, (outside, n)


def _largest_face_row(scores, out: Path) -> str:
    from common.io import read_csv as rc
    man = rc(out / "01_faces" / "manifest.csv")
    test = set(scores["image_path"])
    best, area = None, -1
    for crop, x0, t, r, b in zip(man["crop"], man["box_left"], man["box_top"], man["box_right"], man["box_bottom"]):
        if crop in test and (int(r) - int(x0)) * (int(b) - int(t)) > area:
            best, area = crop, (int(r) - int(x0)) * (int(b) - int(t))
    return best


@pytest.mark.parametrize("degradation", ["jpeg20", "downscale4x"])
def test_degraded_item_is_outside_the_conditions(demo, test_rows, tmp_path, capsys, degradation):
    out = demo[0]
    scores, _ = test_rows
    frame = _frame_of(out, _largest_face_row(scores, out))
    if degradation == "jpeg20":
        q = tmp_path / "q.jpg"
        cv2.imwrite(str(q), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 20])
        expect = "blockiness"
    else:
        h, w = frame.shape[:2]
        q = _png(tmp_path / "q.png", cv2.resize(frame, (w // 4, h // 4), interpolation=cv2.INTER_AREA))
        expect = "image_width_px"
    code, stdout, err, rec = _ev(demo, capsys, q, tmp_path / "cases")
    assert code == EXIT_OUTSIDE, (stdout, err)
    (r,) = rec["results"]
    assert expect in [e["name"] for e in r["conditions"]["outside"]]
    assert r["log10_lr_bounded"] is None and r["lr_bounded"] is None
    assert "outside the validated conditions: no LR is given" in r["statement"]
    assert "outside the validated conditions: no LR is given" in stdout and "LR =" not in stdout
    if degradation == "jpeg20":
        assert r["measured"]["jpeg_quality"]["value"] == 20                           # estimated from the tables
    html = (tmp_path / "cases" / rec["case_id"] / "evidence.html").read_text()
    assert "no LR is given" in html and "bounded-lr-1" not in html
    # with the override: the LR, the warning printed above it
    shutil.rmtree(tmp_path / "cases")
    code, stdout, err, rec = _ev(demo, capsys, q, tmp_path / "cases", "--allow-outside-conditions")
    assert code == EXIT_OK, (stdout, err)
    (r,) = rec["results"]
    assert r["log10_lr_bounded"] is not None and r["warning"].startswith("Warning: outside the validated conditions")
    assert stdout.index("Warning: outside the validated conditions") < stdout.index("LR =")
    html = (tmp_path / "cases" / rec["case_id"] / "evidence.html").read_text()
    assert html.index("class='warning'") < html.index("id='bounded-lr-1'")


def test_case_folders_never_overwrite(demo, test_rows, tmp_path, capsys):
    out = demo[0]
    scores, _ = test_rows
    a = _png(tmp_path / "a" / "q.png", _frame_of(out, scores["image_path"][0]))
    b = _png(tmp_path / "b" / "q.png", _frame_of(out, scores["image_path"][-1]))
    cases = tmp_path / "cases"
    flags = ("--allow-outside-conditions",)
    assert _ev(demo, capsys, a, cases, *flags)[0] == EXIT_OK
    assert _ev(demo, capsys, b, cases, *flags)[0] == EXIT_OK
    folders = sorted(p.name for p in cases.iterdir() if not p.name.startswith("."))
    assert len(folders) == 2 and all(f.startswith("q.png_") for f in folders)        # two inputs, one name
    first = {p.name: p.read_bytes() for p in (cases / folders[0]).iterdir()}
    rec0 = json.loads(first["evidence.json"])
    target = cases / rec0["case_id"]
    src = a if rec0["input"]["path"] == str(a) else b
    code, stdout, _, _ = _ev(demo, capsys, src, cases, *flags)                         # the same input again
    assert code == EXIT_OK and stdout.startswith(f"re-run: {target}")
    again = {p.name: p.read_bytes() for p in target.iterdir()}
    assert sorted(again) == sorted(first)
    time_re = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    pdf_before = tmp_path / "before.pdf"
    pdf_before.write_bytes(first["evidence.pdf"])
    assert time_re.sub(b"T", pdf_text(pdf_before).encode()) == time_re.sub(b"T", pdf_text(target / "evidence.pdf").encode())
    for name in first:
        if name == "evidence.pdf":
            continue                     # compressed text streams: compared as text above
        assert time_re.sub(b"T", again[name]) == time_re.sub(b"T", first[name]), name   # only the time differs
    # another input into that folder (--case-id): refused, nothing changed
    other = b if src == a else a
    code, _, err, _ = _ev(demo, capsys, other, cases, "--case-id", rec0["case_id"], *flags)
    assert code == EXIT_CASE_CONFLICT and "another input" in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in target.iterdir()} == again


def test_several_faces_one_result_each_with_overview(demo, test_rows, tmp_path, capsys):
    out = demo[0]
    scores, _ = test_rows
    i = scores["label"].index("0")
    vid = scores["video_id"][i]
    fake = next(p for p, v in zip(scores["image_path"], scores["video_id"]) if v == f"{vid}_fake")
    two = np.hstack([_frame_of(out, scores["image_path"][i]), _frame_of(out, fake)])
    q = _png(tmp_path / "two.png", two)
    code, stdout, err, rec = _ev(demo, capsys, q, tmp_path / "cases", "--allow-outside-conditions")
    assert code == EXIT_OK, (stdout, err)
    assert len(rec["results"]) == 2 and "2 face(s) found" in stdout
    xs = sorted(r["box"][0] for r in rec["results"])
    assert xs[0] < two.shape[1] // 2 <= xs[1]                                           # one face per half
    folder = tmp_path / "cases" / rec["case_id"]
    ov = cv2.imread(str(folder / "overview.png"))
    assert ov.shape[:2] == two.shape[:2] and not np.array_equal(cv2.cvtColor(ov, cv2.COLOR_BGR2RGB), two)
    assert (folder / "face_1.png").is_file() and (folder / "face_2.png").is_file()


def _video(path: Path, frames: list, fourcc="mp4v") -> Path:
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 5, (w, h))
    for f in frames:
        wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    wr.release()
    return path


def test_video_level_short_track_and_truncated(demo, test_rows, tmp_path, capsys):
    out = demo[0]
    scores, _ = test_rows
    vid = scores["video_id"][0]
    paths = [p for p, v in zip(scores["image_path"], scores["video_id"]) if v == vid]
    frames = [_frame_of(out, p) for p in paths]
    n = len(frames)
    # the whole track, losslessly (FFV1): video level, bit-identical to stage 10's video row
    code, stdout, err, rec = _ev(demo, capsys, _video(tmp_path / "full.avi", frames, "FFV1"), tmp_path / "c1",
                                 "--allow-outside-conditions")
    assert code == EXIT_OK, (stdout, err)
    (r,) = rec["results"]
    assert rec["input"]["kind"] == "video" and rec["input"]["frames_read"] == n == rec["input"]["frames_expected"]
    assert r["level"] == "video" and len(r["frames"]) == n
    vl = read_csv(out / "10_kde_lr" / "test_video_lr.csv")
    k = vl["video_id"].index(vid)
    assert r["annex"]["score"]["value"] == float(vl["score"][k])
    assert r["log10_lr_bounded"] == float(vl["llr"][k])
    assert r["annex"]["log10_lr_unbounded"]["value"] == float(vl["llr_calibrated"][k])
    assert {e["name"] for e in r["conditions"]["inside"]} >= {"frames_per_video", "track_length"}
    # a track shorter than the validated range: frame level, said so
    code, stdout, err, rec = _ev(demo, capsys, _video(tmp_path / "short.mp4", frames[:2]), tmp_path / "c2",
                                 "--allow-outside-conditions")
    assert code == EXIT_OK, (stdout, err)
    (r,) = rec["results"]
    assert r["level"] == "frame" and "frame-level statement instead of a video-level one" in stdout
    assert "fewer than the validated range" in r["notes"][0]
    # a truncated file: scored on what was read, said so
    full = _video(tmp_path / "t.avi", frames * 4, "MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    code, stdout, err, rec = _ev(demo, capsys, cut, tmp_path / "c3", "--allow-outside-conditions")
    assert code == EXIT_OK, (stdout, err)
    assert rec["input"]["frames_read"] < rec["input"]["frames_expected"]
    assert "truncated" in rec["notes"][0] and "note: the video is truncated" in stdout


def test_grayscale_and_rgba_items_are_scored_and_stated(demo, test_rows, tmp_path, capsys):
    out = demo[0]
    scores, _ = test_rows
    frame = _frame_of(out, scores["image_path"][0])
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    rgba = tmp_path / "rgba.png"
    cv2.imwrite(str(rgba), np.dstack([cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), np.full(frame.shape[:2], 200, np.uint8)]))
    for path, words in ((gray, "grayscale image"), (rgba, "alpha (transparency) channel: it was removed")):
        code, stdout, err, rec = _ev(demo, capsys, path, tmp_path / "cases", "--allow-outside-conditions")
        assert code == EXIT_OK, (stdout, err)
        assert len(rec["results"]) == 1 and rec["results"][0]["log10_lr_bounded"] is not None
        assert [ln for ln in stdout.splitlines() if words in ln] and words in " ".join(rec["notes"])
        assert words in (tmp_path / "cases" / rec["case_id"] / "evidence.html").read_text()
    # the RGBA item's colour channels are the frame's: the same score as the frame itself
    q = _png(tmp_path / "plain.png", frame)
    plain = _ev(demo, capsys, q, tmp_path / "cases", "--allow-outside-conditions")[3]
    assert plain["results"][0]["annex"]["score"] == rec["results"][0]["annex"]["score"]


def test_no_face_exit_3_one_line(demo, tmp_path, capsys):
    blank = np.tile(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], (320, 1, 3))
    code, stdout, err, rec = _ev(demo, capsys, _png(tmp_path / "blank.png", blank), tmp_path / "cases")
    assert code == EXIT_NO_FACE, (stdout, err)
    assert stdout.strip().count("\n") == 0 and "No face was found" in stdout and "LR =" not in stdout
    assert rec["results"] == [] and "No face was found" in rec["statement"]


# ------------------------------------------------------------------------------------------ rendering
def _chromium(*args, timeout=120) -> subprocess.CompletedProcess:
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        pytest.fail("headless Chromium not found: apt-get install -y chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="casework-chromium-")
    try:
        return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_html_in_chromium_and_pdf_show_the_bounded_value(demo, test_rows, tmp_path, capsys):
    out = demo[0]
    scores, _ = test_rows
    q = _png(tmp_path / "q.png", _frame_of(out, scores["image_path"][0]))
    code, stdout, err, rec = _ev(demo, capsys, q, tmp_path / "cases", "--allow-outside-conditions")
    assert code == EXIT_OK, (stdout, err)
    (r,) = rec["results"]
    value = f"log10 LR = {r['log10_lr_bounded']:+.2f}"
    folder = tmp_path / "cases" / rec["case_id"]
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", (folder / "evidence.html").as_uri()).stdout
    assert value in dom and f"LR = {r['lr_bounded_text']}" in dom
    assert 'id="annex"' in dom and "not for reporting" in dom and 'id="custody"' in dom
    assert rec["input"]["sha256"] in dom
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1000,1400", "--hide-scrollbars", (folder / "evidence.html").as_uri())
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (1400, 1000) and img.std() > 10       # drawn, not blank
    art = Path(__file__).resolve().parents[1] / "test-artifacts"
    art.mkdir(exist_ok=True)
    shutil.copy(shot, art / "casework_evidence.png")
    page = pdf_page_png(folder / "evidence.pdf", tmp_path / "p1")
    assert page.std() > 10 and 0.005 < (page.mean(axis=2) < 128).mean() < 0.5
    assert value in pdf_text(folder / "evidence.pdf")


# ------------------------------------------------------------------------------------------ issue 19
def _report_text(path: Path) -> str:
    """A page's text without its embedded images (base64 could hold any word)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text())


def test_unvalidated_system_refused_by_default_warned_with_override(demo, test_rows, tmp_path, capsys):
    from common.config import load_config
    from evaluation.verdict import PASSED, judge_system, verdict
    out, overrides = demo[0], demo[1]
    system = _system(out, overrides)
    cfg = load_config(CONFIG, [o for o in overrides if o != "--set"])
    v = judge_system(system, cfg.get("report.criteria"))
    report = json.loads((out / "16_report" / "summary.json").read_text())       # the report's own judgement
    assert v == {**verdict(report["validation_matrix"], report["degenerate"], system.sha256)}
    assert v["status"] != PASSED and v["n_failed"] >= 1                       # the demo's system fails
    scores, _ = test_rows
    q = _png(tmp_path / "q.png", _frame_of(out, scores["image_path"][0]))
    strict = ("--set", "evidence.allow_unvalidated_system=false", "--allow-outside-conditions")
    code, stdout, err, rec = _ev(demo, capsys, q, tmp_path / "cases", *strict)
    assert code == EXIT_UNVALIDATED and rec is None and stdout == "", (stdout, err)
    assert err.count("\n") == 1 and "NOT VALIDATED" in err and system.sha256 in err
    assert "--allow-unvalidated-system" in err and f"{v['n_failed']} of {v['n_criteria']} criteria" in err
    # with the override: the LR, NOT VALIDATED above it in the terminal, JSON, HTML and PDF
    for extra, by in ((("--allow-unvalidated-system",), "--allow-unvalidated-system"), ((), "evidence.allow_unvalidated_system")):
        flags = (*strict[:2], *extra, "--allow-outside-conditions") if extra else ("--allow-outside-conditions",)
        code, stdout, err, rec = _ev(demo, capsys, q, tmp_path / f"cases{len(extra)}", *flags)
        assert code == EXIT_OK, (stdout, err)
        (r,) = rec["results"]
        assert rec["validation"]["status"] == v["status"] and rec["validation"]["allowed_by"] == by
        assert rec["validation"]["sha256"] == system.sha256 and r["system_validation"] == v["status"]
        assert r["validation_warning"].startswith("NOT VALIDATED") and r["log10_lr_bounded"] is not None
        assert stdout.index("NOT VALIDATED") < stdout.index("LR =") and system.sha256 in stdout
        folder = tmp_path / f"cases{len(extra)}" / rec["case_id"]
        html = (folder / "evidence.html").read_text()
        assert html.index("class='notvalid'") < html.index("id='bounded-lr-1'") and "id='failed-criteria'" in html
        pdf = pdf_text(folder / "evidence.pdf")
        assert pdf.index("NOT VALIDATED") < pdf.index("LR = ")


def test_real_face_beside_a_smaller_fake_both_listed(demo, test_rows, tmp_path, capsys):
    out = demo[0]
    scores, _ = test_rows
    real = _frame_of(out, _largest_face_row(scores, out))
    vid = next(v for v, lab in zip(scores["video_id"], scores["label"]) if lab == "1")
    fake = _frame_of(out, next(p for p, v in zip(scores["image_path"], scores["video_id"]) if v == vid))
    small = cv2.resize(fake, (fake.shape[1] * 3 // 5, fake.shape[0] * 3 // 5), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((real.shape[0], real.shape[1] + small.shape[1], 3), np.uint8)
    canvas[:, : real.shape[1]] = real
    canvas[: small.shape[0], real.shape[1]:] = small
    code, stdout, err, rec = _ev(demo, capsys, _png(tmp_path / "two.png", canvas), tmp_path / "cases",
                                 "--allow-outside-conditions")
    assert code == EXIT_OK, (stdout, err)
    assert len(rec["results"]) == 2 and "2 face(s) found" in stdout and "1 assessed, 1 not assessed" in stdout
    first, second = rec["results"]
    assert first["assessed"] and first["box"][0] < real.shape[1] <= second["box"][0]
    assert not second["assessed"] and second["log10_lr_bounded"] is None
    assert "evidence.min_face_fraction = 0.5" in second["not_assessed_reason"]
    assert "face 2: Face 2: not assessed" in stdout
    folder = tmp_path / "cases" / rec["case_id"]
    assert (folder / "face_2.png").is_file() and "id='not-assessed-2'" in (folder / "evidence.html").read_text()
    assert "not assessed" in pdf_text(folder / "evidence.pdf")


def test_grayscale_face_is_outside_colour_calib_data(demo, test_rows, tmp_path, capsys):
    out = demo[0]
    scores, _ = test_rows
    system = _system(out, demo[1])
    assert system.conditions["ranges"]["colour_channels"]["min"] == 3                # the demo's calib faces: colour
    frame = _frame_of(out, scores["image_path"][0])
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    code, stdout, err, rec = _ev(demo, capsys, gray, tmp_path / "cases")
    assert code == EXIT_OUTSIDE, (stdout, err)
    (r,) = rec["results"]
    assert "colour_channels" in [e["name"] for e in r["conditions"]["outside"]] and r["log10_lr_bounded"] is None


def test_pages_say_the_accepted_conditions_in_words_and_no_none(demo, test_rows, tmp_path, capsys):
    from common.conditions import describe_conditions
    out = demo[0]
    report = _report_text(out / "16_report" / "report.html")
    from slr.system import LRSystem
    words = describe_conditions(LRSystem.load(out / "10_kde_lr" / "system").conditions)   # the system the report shows
    assert "id='accepted-conditions'" in report and all(html.escape(w) in report for w in words)
    assert any(w.startswith("face boxes ") for w in words) and "colour faces only (a grayscale face is outside)" in words
    scores, _ = test_rows
    q = _png(tmp_path / "q.png", _frame_of(out, scores["image_path"][0]))
    rec = _ev(demo, capsys, q, tmp_path / "cases", "--allow-outside-conditions")[3]
    evidence = _report_text(tmp_path / "cases" / rec["case_id"] / "evidence.html")
    for page in (report, evidence):
        assert not re.search(r"\bNone\b", page)
