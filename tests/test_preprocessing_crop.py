"""Stage 01 end to end on videos encoded from real UADFV frames: detection rate, crop size, manifest,
bad inputs, masks, resume after a kill, shards and workers."""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from preprocessing.crop import DEFAULTS, merge_manifests, options_from_config, run_crop
from preprocessing.video import sample_indices

REPO = Path(__file__).resolve().parents[1]
FOURCC, EXT = "mp4v", ".mp4"      # works in opencv-python-headless here (MJPG/.avi too)


def encode_video(frames_dir: Path, out: Path, n: int | None = None, canvas: tuple | None = None,
                 scale: float = 1.0, fourcc: str = FOURCC) -> list[Path]:
    """Write the PNG frames of a UADFV video (optionally scaled and placed on a larger canvas) into a video."""
    pngs = sorted(frames_dir.glob("*.png"))[:n]
    out.parent.mkdir(parents=True, exist_ok=True)
    first = cv2.imread(str(pngs[0]))
    side = int(round(first.shape[0] * scale))
    w, h = canvas or (side, side)
    vw = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc), 25, (w, h))
    assert vw.isOpened()
    for p in pngs:
        img = cv2.imread(str(p))
        if scale != 1.0:
            img = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
        frame = np.full((h, w, 3), 70, np.uint8)
        y0, x0 = (h - side) // 3, (w - side) // 2
        frame[y0:y0 + side, x0:x0 + side] = img
        vw.write(frame)
    vw.release()
    return pngs


def opts(**kw) -> dict:
    o = options_from_config({**DEFAULTS, "frames_per_video": 6})
    o.update(kw)
    return o


def tree(root: Path) -> dict[str, bytes]:
    """Every output file (not the hidden bookkeeping) by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------ real videos, CLI
def test_cli_on_encoded_uadfv_videos(uadfv_root, tmp_path):
    """Videos made from UADFV frames (960x540, face enlarged 1.5x, so the fast downscaled detection is
    used): a face in >= 95 % of sampled frames, 256x256 crops, and crops that reproduce the shipped
    alignment (landmarks within 4 px of the shipped ones)."""
    inp = tmp_path / "in"
    vids = {"real": ["0002", "0011"], "fake": ["0002_fake", "0030_fake"]}
    sources = {}
    for lab, ids in vids.items():
        for vid in ids:
            sources[vid] = encode_video(uadfv_root / lab / "frames" / vid, inp / lab / f"{vid}{EXT}", n=24,
                                        canvas=(960, 540), scale=1.5)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(REPO / "preprocessing/01_crop_faces.py"), "--input", str(inp),
                        "--output", str(out), "--set", "preprocessing.frames_per_video=8"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = read_rows(out / "manifest.csv")
    assert len(rows) == 4 * 8
    assert [int(x["frame_idx"]) for x in rows[:8]] == sample_indices(24, 8)
    found = [x for x in rows if x["status"] in ("ok", "multiple_faces")]
    assert len(found) >= 0.95 * len(rows)
    errs = []
    for x in found:
        crop = cv2.imread(str(out / x["crop"]))
        assert crop.shape == (256, 256, 3)
        assert int(x["box_left"]) >= 0 and int(x["box_right"]) <= 960 and float(x["score"]) > 0
        lab = "fake" if x["label"] == "1" else "real"
        lm = np.load(out / lab / "landmarks" / x["video_id"] / f"{int(x['frame_idx']):03d}.npy")
        assert lm.shape == (68, 2)
        src = sources[x["video_id"]][int(x["frame_idx"])]
        ref = np.load(src.parents[2] / "landmarks" / x["video_id"] / f"{src.stem}.npy").astype(float)[:68]
        errs.append(np.linalg.norm(lm - ref, axis=1).mean())
    assert np.mean(errs) < 4.0
    assert (out / "summary.json").is_file() and (out / "crop_status.png").is_file()


# ------------------------------------------------------------------------------------ bad inputs
def test_bad_inputs_are_recorded_and_nothing_half_written(uadfv_root, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    (inp / "real").mkdir(parents=True)
    (inp / "fake").mkdir(parents=True)
    (inp / "real" / "empty.mp4").write_bytes(b"")
    (inp / "real" / "notes.mp4").write_text("this is not a video\n" * 20)
    # truncated: an MJPG .avi cut in the middle keeps its first frames readable; an .mp4 cut loses its index
    encode_video(uadfv_root / "real/frames/0004", inp / "real" / "cut.avi", n=12, fourcc="MJPG")
    data = (inp / "real" / "cut.avi").read_bytes()
    (inp / "real" / "cut.avi").write_bytes(data[: len(data) // 2])
    encode_video(uadfv_root / "real/frames/0005", inp / "real" / "cutmp4.mp4", n=12)
    data = (inp / "real" / "cutmp4.mp4").read_bytes()
    (inp / "real" / "cutmp4.mp4").write_bytes(data[: len(data) // 2])
    rng = np.random.default_rng(0)
    noface = cv2.GaussianBlur(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), (0, 0), 3)
    cv2.imwrite(str(inp / "fake" / "noface.png"), noface)
    face = cv2.imread(str(uadfv_root / "fake/frames/0006_fake/000.png"))
    cv2.imwrite(str(inp / "fake" / "gray.png"), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(inp / "fake" / "rgba.png"), np.dstack([face, np.full(face.shape[:2], 255, np.uint8)]))
    two = np.full((400, 700, 3), 60, np.uint8)
    two[20:276, 20:276] = face
    two[100:356, 420:676] = cv2.imread(str(uadfv_root / "real/frames/0007/000.png"))
    two[100:356, 420:676] = cv2.resize(two[100:356, 420:676][50:206, 50:206], (256, 256))  # a larger 2nd face
    cv2.imwrite(str(inp / "fake" / "two.png"), two)
    (inp / "fake" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")

    res = run_crop(inp, out, opts(), progress=False)
    by = {}
    for r in res.rows:
        by.setdefault(r["video_id"], []).append(r)
    assert [r["status"] for r in by["empty"]] == ["unreadable"] and by["empty"][0]["frame_idx"] == ""
    assert [r["status"] for r in by["notes"]] == ["unreadable"]
    assert [r["status"] for r in by["cutmp4"]] == ["unreadable"]
    cut = [r["status"] for r in by["cut"]]
    assert "ok" in cut and cut[-1] == "unreadable" and len(cut) == 6, cut   # header says 12 frames, half remain
    assert [r["status"] for r in by["noface"]] == ["no_face"] and by["noface"][0]["crop"] == ""
    assert [r["status"] for r in by["gray"]] == ["ok"] and [r["status"] for r in by["rgba"]] == ["ok"]
    assert [r["status"] for r in by["broken"]] == ["unreadable"]
    two_row = by["two"][0]
    assert two_row["status"] == "multiple_faces" and two_row["n_faces"] == "2" and two_row["crop"]
    assert (int(two_row["box_left"]) + int(two_row["box_right"])) / 2 > 420   # the larger (right) face was cropped
    for vid in ("gray", "rgba", "two"):
        crop = cv2.imread(str(out / "fake/frames" / vid / "000.png"), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (256, 256, 3)
    # exactly the frames with a crop have files; no temporary or staging leftovers
    pngs = {p.relative_to(out).as_posix() for p in out.glob("*/frames/*/*.png")}
    assert pngs == {r["crop"] for r in res.rows if r["crop"]}
    assert not list(out.rglob("*.tmp")) and not (out / ".staging").exists()
    assert not (out / "real" / "masks").exists() and not (out / "fake" / "masks").exists()   # no masks given
    assert len(read_rows(out / "manifest.csv")) == len(res.rows)


def test_multiple_faces_skip_mode(uadfv_root, tmp_path):
    inp = tmp_path / "in" / "real"
    inp.mkdir(parents=True)
    two = np.full((300, 560, 3), 60, np.uint8)
    two[20:276, 10:266] = cv2.imread(str(uadfv_root / "real/frames/0008/000.png"))
    two[20:276, 290:546] = cv2.imread(str(uadfv_root / "real/frames/0009/000.png"))
    cv2.imwrite(str(inp / "pair.png"), two)
    res = run_crop(tmp_path / "in", tmp_path / "out", opts(multiple_faces="skip"), progress=False)
    (row,) = res.rows
    assert row["status"] == "multiple_faces" and row["crop"] == "" and row["box_left"] != ""
    assert not list((tmp_path / "out").glob("*/frames/*/*.png"))


# ------------------------------------------------------------------------------------ masks
def test_masks_are_warped_with_the_same_matrix(uadfv_root, tmp_path):
    """Frame-folder input with a mask folder holding each frame's own gray image: the mask crop must be
    the gray image of the face crop (same matrix, same interpolation; rounding aside)."""
    src = uadfv_root / "fake/frames/0010_fake"
    fdir, mdir = tmp_path / "in/fake/frames/clip", tmp_path / "in/fake/masks/clip"
    fdir.mkdir(parents=True)
    mdir.mkdir(parents=True)
    for p in sorted(src.glob("*.png"))[:3]:
        img = cv2.imread(str(p))
        big = np.full((400, 500, 3), 40, np.uint8)
        big[60:316, 150:406] = img
        cv2.imwrite(str(fdir / p.name), big)
        cv2.imwrite(str(mdir / p.name), cv2.cvtColor(big, cv2.COLOR_BGR2GRAY))
    out = tmp_path / "out"
    res = run_crop(tmp_path / "in", out, opts(), progress=False)
    assert [r["status"] for r in res.rows] == ["ok"] * 3
    for r in res.rows:
        crop = cv2.imread(str(out / r["crop"]))
        mask = cv2.imread(str(out / r["crop"].replace("/frames/", "/masks/")), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (256, 256)
        diff = np.abs(mask.astype(int) - cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(int))
        assert diff.max() <= 2


# ------------------------------------------------------------------------------------ resume, shards, workers
@pytest.fixture(scope="module")
def small_videos(uadfv_root, tmp_path_factory):
    inp = tmp_path_factory.mktemp("resume_in")
    for lab, vid in (("real", "0012"), ("real", "0013"), ("fake", "0012_fake"), ("fake", "0013_fake")):
        encode_video(uadfv_root / lab / "frames" / vid, inp / lab / f"{vid}{EXT}", n=10)
    ref = tmp_path_factory.mktemp("resume_ref")
    run_crop(inp, ref, opts(frames_per_video=5), progress=False)
    return inp, ref


def test_kill_and_rerun_gives_the_same_outputs(small_videos, tmp_path):
    inp, ref = small_videos
    out = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "preprocessing/01_crop_faces.py"), "--input", str(inp), "--output", str(out),
           "--set", "preprocessing.frames_per_video=5"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / ".manifest" / "real" / "0012.csv"
    t0 = time.time()
    while not first.exists() and proc.poll() is None and time.time() - t0 < 240:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the first video never finished"
    assert not (out / "manifest.csv").exists(), "the run finished before it could be killed"
    done_before = {p: p.stat().st_mtime_ns for p in out.glob("real/*/0012/*")}
    assert done_before
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "already done" in r.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("real/*/0012/*")} == done_before   # not redone
    a, b = tree(out), tree(ref)
    b.pop("summary.json", None), b.pop("crop_status.png", None)
    a.pop("summary.json", None), a.pop("crop_status.png", None)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert not (out / ".staging").exists()


def test_shards_and_two_workers_match_one_run(small_videos, tmp_path):
    inp, ref = small_videos
    out = tmp_path / "sharded"
    r0 = run_crop(inp, out, opts(frames_per_video=5), shard=(0, 2), progress=False)
    r1 = run_crop(inp, out, opts(frames_per_video=5), shard=(1, 2), progress=False)
    assert r0.n_processed == 2 and r1.n_processed == 2 and r1.n_skipped == 0
    assert tree(out) == tree(ref)
    par = tmp_path / "par"
    run_crop(inp, par, opts(frames_per_video=5), workers=2, progress=False)
    assert tree(par) == tree(ref)
    # changed settings on an existing output are refused instead of mixing crops
    with pytest.raises(ValueError, match="frames_per_video"):
        run_crop(inp, out, opts(frames_per_video=7), progress=False)
    # a finished output resumes without work and rebuilds the same manifest
    assert run_crop(inp, out, opts(frames_per_video=5), progress=False).n_processed == 0
    assert merge_manifests(out)[1] == read_rows(ref / "manifest.csv")


# ------------------------------------------------------------------------------------ small units
def test_sampling_rule_reproduces_the_shipped_uadfv_frame_numbers(uadfv_root):
    """The shipped videos with 32 frames were sampled by linspace(0, n-1, 32) -> int; the last index is
    n-1, so our rule must give exactly their frame numbers."""
    checked = 0
    for v in sorted(uadfv_root.glob("*/frames/*")):
        idx = sorted(int(p.stem) for p in v.glob("*.png"))
        if len(idx) == 32:
            assert sample_indices(idx[-1] + 1, 32) == idx, v.name
            checked += 1
    assert checked >= 80
    assert sample_indices(5, 32) == [0, 1, 2, 3, 4] and sample_indices(0, 32) == []
    assert sample_indices(10, stride=4) == [0, 4, 8]


def test_shard_parsing():
    from preprocessing.crop import parse_shard, shard_items

    assert parse_shard(None) == (0, 1) and parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "-1/3", "a/b", "3"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)
    items = list(range(10))
    parts = [shard_items(items, (i, 3)) for i in range(3)]
    assert sorted(sum(parts, [])) == items and parts[0] == [0, 3, 6, 9]


def test_a_replaced_source_with_the_same_name_is_cropped_again(small_videos, tmp_path):
    """Issue 11 regression: resume used to go by file name, so a replaced video was never redone."""
    src, ref = small_videos
    inp = tmp_path / "in"
    shutil.copytree(src, inp)
    out = tmp_path / "out"
    assert run_crop(inp, out, opts(frames_per_video=5), progress=False).n_processed == 4
    old = inp / "real" / f"0012{EXT}"
    st = old.stat()
    shutil.copyfile(inp / "real" / f"0013{EXT}", old)          # another video under the same name ...
    os.utime(old, ns=(st.st_atime_ns, st.st_mtime_ns))           # ... even with the old modification time
    r = run_crop(inp, out, opts(frames_per_video=5), progress=False)
    assert (r.n_processed, r.n_skipped) == (1, 3)
    a = {p.name: p.read_bytes() for p in (out / "real" / "frames" / "0012").iterdir()}
    b = {p.name: p.read_bytes() for p in (ref / "real" / "frames" / "0013").iterdir()}
    assert a == b                                                # the crops are now those of the new source
    assert run_crop(inp, out, opts(frames_per_video=5), progress=False).n_processed == 0
