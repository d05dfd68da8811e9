"""Stage 01 speed: our fast path against DeepfakeBench's naive way on 1280x720 videos made from UADFV.

Each benchmark video holds the frames of one UADFV video, each crop enlarged 2x (512x512, a
typical 720p talking-head size) and placed on a textured 1280x720 background at a position that
drifts from video to video. Every frame is sampled (so decoding costs one frame per sample).

- naive (DeepfakeBench's preprocess): landmark predictor reloaded per video; HOG with one
  upsampling on the full-resolution frame; predictor; 5-point alignment; a second HOG detection
  on the crop and the predictor again to get the crop's landmarks.
- fast (preprocessing.faces.FaceCropper): models loaded once; HOG without upsampling on a copy
  downscaled to ``detect_max_width`` (640), box mapped back, predictor at full resolution, the
  same alignment, landmarks mapped into the crop through the alignment matrix; the full-resolution
  pass only for frames where the fast pass finds nothing.

Throughput is frames per CPU-second of this single-threaded process (OpenCV set to one thread),
which is "per core" and robust to other load on the machine; wall-clock figures are printed too.
Then stage 01 itself (run_crop) with 1 and 2 worker processes, wall clock.

    python benchmarks/bench_preprocessing.py [--videos 4] [--frames 16] [--json out.json]
    python benchmarks/bench_preprocessing.py --shipped-landmarks     # landmark agreement, all 3,099 crops
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from preprocessing.crop import DEFAULTS, options_from_config, run_crop  # noqa: E402
from preprocessing.faces import FaceCropper, align, models_dir  # noqa: E402
from preprocessing.video import read_video_frames, sample_indices, video_frame_count  # noqa: E402

W, H = 1280, 720


def uadfv_root() -> Path:
    return Path(os.environ.get("UADFV_ROOT", Path(__file__).resolve().parents[2] / "shared/data/UADFV"))


def make_videos(root: Path, out: Path, n_videos: int, n_frames: int) -> list[Path]:
    rng = np.random.default_rng(0)
    vids = sorted((root / "real" / "frames").iterdir())[:n_videos]
    paths = []
    for k, vdir in enumerate(vids):
        bg = cv2.resize(rng.integers(40, 200, (H // 16, W // 16, 3), dtype=np.uint8), (W, H),
                        interpolation=cv2.INTER_CUBIC)
        x0, y0 = 100 + 180 * k % (W - 612), 60 + 37 * k % (H - 572)
        p = out / "real" / f"{vdir.name}.mp4"
        p.parent.mkdir(parents=True, exist_ok=True)
        vw = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), 25, (W, H))
        for png in sorted(vdir.glob("*.png"))[:n_frames]:
            frame = bg.copy()
            frame[y0:y0 + 512, x0:x0 + 512] = cv2.resize(cv2.imread(str(png)), (512, 512), interpolation=cv2.INTER_CUBIC)
            vw.write(frame)
        vw.release()
        paths.append(p)
    return paths


def frames_of(path: Path, n_frames: int):
    return read_video_frames(path, sample_indices(video_frame_count(path), n_frames))


def naive(videos: list[Path], n_frames: int) -> tuple[dict, dict]:
    import dlib

    det = dlib.get_frontal_face_detector()
    model = str(models_dir() / "shape_predictor_68_face_landmarks.dat")
    res, n = {}, 0
    for v in videos:
        pred = dlib.shape_predictor(model)                  # reloaded per video, as DeepfakeBench does
        for idx, frame in frames_of(v, n_frames):
            n += 1
            faces = det(frame, 1)
            if not len(faces):
                res[(v.stem, idx)] = None
                continue
            face = max(faces, key=lambda r: r.width() * r.height())
            lm = np.array([(p.x, p.y) for p in pred(frame, face).parts()], float)
            crop, _, _, _ = align(frame, lm)
            again = det(crop, 1)
            crop_lm = (np.array([(p.x, p.y) for p in pred(crop, again[0]).parts()], float) if len(again) else None)
            res[(v.stem, idx)] = {"frame_lm": lm, "crop_lm": crop_lm, "crop": crop}
    return res, {"frames": n}


def fast(videos: list[Path], n_frames: int, cropper: FaceCropper) -> tuple[dict, dict]:
    res, n = {}, 0
    for v in videos:
        for idx, frame in frames_of(v, n_frames):
            n += 1
            dets = cropper.detect(frame)
            if not dets:
                res[(v.stem, idx)] = None
                continue
            a = cropper.align_face(frame, dets[0])
            res[(v.stem, idx)] = {"frame_lm": a.frame_landmarks, "crop_lm": a.landmarks, "crop": a.crop}
    return res, {"frames": n}


def shipped_landmarks(step: int = 1) -> dict:
    """Detection + 68-point predictor on the shipped 256x256 UADFV crops vs the shipped 81-point
    landmarks (first 68 points): per-frame mean point distance in pixels."""
    from preprocessing.video import read_image

    root = uadfv_root()
    cropper = FaceCropper()
    errs, missed = [], 0
    pngs = sorted(root.glob("*/frames/*/*.png"))[::step]
    for png in pngs:
        lm = cropper.landmarks(read_image(png))
        if lm is None:
            missed += 1
            continue
        ref = np.load(png.parents[2] / "landmarks" / png.parent.name / f"{png.stem}.npy").astype(float)[:68]
        errs.append(np.linalg.norm(lm - ref, axis=1).mean())
    e = np.array(errs)
    return {"frames": len(pngs), "no_face": missed, "mean_px": float(e.mean()), "median_px": float(np.median(e)),
            "p95_px": float(np.percentile(e, 95)), "max_px": float(e.max())}


def scaling(inp: Path, n_frames: int) -> dict:
    """Stage 01 (run_crop) with 1 and 2 worker processes: wall-clock frames/s, and frames per CPU-second
    of the processes doing the work (the pool's children for 2 workers), which stays flat if the work
    scales linearly given free cores."""
    opts = options_from_config({**DEFAULTS, "frames_per_video": n_frames})
    figs = {}
    for w in (1, 2):
        c0 = resource.getrusage(resource.RUSAGE_SELF if w == 1 else resource.RUSAGE_CHILDREN)
        res = run_crop(inp, inp.parent / f"out{w}", opts, workers=w, progress=False)
        c1 = resource.getrusage(resource.RUSAGE_SELF if w == 1 else resource.RUSAGE_CHILDREN)
        cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        figs[f"stage01_fps_wall_{w}_workers"] = res.frames_processed / res.seconds
        figs[f"stage01_fps_per_cpu_second_{w}_workers"] = res.frames_processed / cpu
        print(f"stage 01 with {w} worker(s): {figs[f'stage01_fps_wall_{w}_workers']:.2f} frames/s wall, "
              f"{figs[f'stage01_fps_per_cpu_second_{w}_workers']:.2f} frames per CPU-second "
              f"(each worker's start-up and model loading included)")
    figs["scaling_wall_2_vs_1"] = figs["stage01_fps_wall_2_workers"] / figs["stage01_fps_wall_1_workers"]
    figs["load_average_1min"] = os.getloadavg()[0]
    print(f"scaling 1 -> 2 workers: {figs['scaling_wall_2_vs_1']:.2f}x wall-clock (os.cpu_count() = "
          f"{os.cpu_count()}, load average {figs['load_average_1min']:.1f}: other jobs on the machine lower it)")
    return figs


def timed(fn, *args):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn(*args)
    return out, time.process_time() - c0, time.perf_counter() - w0


def _naive_vs_fast(videos, frames: int) -> dict:
    """Time decoding alone, the naive and the fast pass on ``videos``; compare their detections and print."""
    # decoding alone, for reference
    (_, dec_cpu, _) = timed(lambda: sum(1 for v in videos for _ in frames_of(v, frames)))
    cropper = FaceCropper()                               # models loaded once (not timed: a fixed cost)
    (nv, ninfo), n_cpu, n_wall = timed(naive, videos, frames)
    (fv, finfo), f_cpu, f_wall = timed(fast, videos, frames, cropper)
    n = ninfo["frames"]
    keys = sorted(nv)
    both = [k for k in keys if nv[k] is not None and fv[k] is not None]
    frame_d = np.array([np.linalg.norm(nv[k]["frame_lm"] - fv[k]["frame_lm"], axis=1).mean() for k in both])
    crop_d = np.array([np.linalg.norm(nv[k]["crop_lm"] - fv[k]["crop_lm"], axis=1).mean()
                       for k in both if nv[k]["crop_lm"] is not None])
    pix_d = np.array([np.abs(nv[k]["crop"].astype(int) - fv[k]["crop"].astype(int)).mean() for k in both])
    figs = {
        "videos": len(videos), "frames": n, "frame_size": f"{W}x{H}",
        "decode_only_fps_per_core": n / dec_cpu,
        "naive_fps_per_core": n / n_cpu, "fast_fps_per_core": n / f_cpu,
        "speedup_per_core": n_cpu / f_cpu,
        "naive_fps_wall": n / n_wall, "fast_fps_wall": n / f_wall,
        "naive_detected": sum(v is not None for v in nv.values()),
        "fast_detected": sum(v is not None for v in fv.values()),
        "same_frames_detected": all((nv[k] is None) == (fv[k] is None) for k in keys),
        "fast_full_resolution_fallbacks": cropper.passes["full"],
        "frame_landmark_diff_px_mean": float(frame_d.mean()), "frame_landmark_diff_px_max": float(frame_d.max()),
        "crop_landmark_diff_px_mean_vs_redetection": float(crop_d.mean()) if crop_d.size else None,
        "crop_pixel_diff_mean_grey_levels": float(pix_d.mean()),
    }
    print(f"{len(videos)} videos x {frames} frames at {W}x{H} ({n} frames); decoding alone "
          f"{figs['decode_only_fps_per_core']:.0f} frames/s per core")
    print(f"naive (DeepfakeBench): {figs['naive_fps_per_core']:.2f} frames/s per core "
          f"({figs['naive_fps_wall']:.2f} wall), faces in {figs['naive_detected']}/{n} frames")
    print(f"fast (ours):           {figs['fast_fps_per_core']:.2f} frames/s per core "
          f"({figs['fast_fps_wall']:.2f} wall), faces in {figs['fast_detected']}/{n} frames, "
          f"{figs['fast_full_resolution_fallbacks']} full-resolution fallbacks")
    print(f"speed-up per core: {figs['speedup_per_core']:.1f}x; same frames detected: "
          f"{figs['same_frames_detected']}")
    print(f"full-frame landmarks fast vs naive: mean {figs['frame_landmark_diff_px_mean']:.3f} px per frame "
          f"(worst frame {figs['frame_landmark_diff_px_max']:.3f} px); crop landmarks mapped vs naive "
          f"re-detection on the crop: {figs['crop_landmark_diff_px_mean_vs_redetection']:.3f} px; "
          f"crops differ by {figs['crop_pixel_diff_mean_grey_levels']:.2f} grey levels on average")
    return figs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=16, help="frames per video (all are sampled)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--no-workers", action="store_true", help="skip the 1-vs-2 worker scaling run")
    ap.add_argument("--only-workers", action="store_true", help="only the 1-vs-2 worker scaling run")
    ap.add_argument("--shipped-landmarks", action="store_true",
                    help="instead: 68-point landmarks on all shipped UADFV crops vs the shipped 81-point ones")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    if args.shipped_landmarks:
        r = shipped_landmarks()
        print(f"shipped UADFV crops: {r['frames']} frames, no face in {r['no_face']}; 68-point vs shipped 81-point "
              f"(first 68) landmarks: mean {r['mean_px']:.2f} px, median {r['median_px']:.2f}, "
              f"95th percentile {r['p95_px']:.2f}, worst frame {r['max_px']:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_pre_") as tmp:
        tmp = Path(tmp)
        videos = make_videos(uadfv_root(), tmp / "in", args.videos, args.frames)
        if args.only_workers:
            figs = scaling(tmp / "in", args.frames)
            if args.json:
                Path(args.json).write_text(json.dumps(figs, indent=2) + "\n")
            return 0
        figs = _naive_vs_fast(videos, args.frames)
        if not args.no_workers:
            figs.update(scaling(tmp / "in", args.frames))
    if args.json:
        Path(args.json).write_text(json.dumps(figs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
