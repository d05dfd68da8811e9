"""The casework command's logic (``evidence.py``): one questioned image or video -> an LR per face.

A trained run supplies every part; nothing is re-fitted on the questioned item:

- face crops: ``preprocessing.faces.FaceCropper`` with the run's ``preprocessing`` options (the
  crop stage 01 made for the training data);
- the detector: ``model`` section + the checkpoint stage 04 used (``evidence.checkpoint``, default
  ``features.checkpoint`` or ``03_train/best.pt``), in eval mode, with stage 04's input normalisation
  and feature choice (``features.full_map``);
- the score: cosine similarity to stage 08's centroid (``<evidence.scores_dir>/centroid.npy``);
- the LR system of stage 10 (``sound`` protocol only): the two KDEs fitted on stage 08's train
  scores with stage 10's bandwidths, the calibration fitted on val (re-fitted here on stage 10's
  own val LLRs, which is deterministic), and the ELUB bounds stage 10 fitted on val.

Conventions: LLR = log10 LR, Hp = "the image is real" (numerator), Hd = "the image is a deepfake";
the *bounded* LLR (calibrated LLR clipped to the ELUB bounds) is the reported value, the verbal
equivalent is taken from it. A video gives one result per face track (faces followed across
frames by box overlap): its score is the mean of the track's frame scores and its LR comes from
stage 10's video-level system; when stage 10 has none, only per-frame LRs are given and the
track has no headline number (the frame system is not valid for mean scores).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from common.config import Config, ConfigError
from common.figures import save_figure
from common.io import InputError, numeric_column, read_csv, read_json

log = logging.getLogger(__name__)

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
EXIT_OK, EXIT_ERROR, EXIT_NO_FACE = 0, 2, 3


# --------------------------------------------------------------------------------- the LR system
@dataclass
class LRSystem:
    """One level's fitted system: KDE LLR -> calibration -> ELUB clip. Scores are cosine similarities."""
    level: str
    kde: object                       # slr.kde.KDELikelihoodRatio
    calibrator: object                # has .transform(llr)
    calibration: str
    lower: float                      # ELUB bounds, log10
    upper: float
    bandwidth: dict
    train_hp: np.ndarray              # training scores (for the density figure)
    train_hd: np.ndarray

    def evaluate(self, scores) -> dict:
        """``llr_kde``, ``llr_calibrated``, ``llr`` (bounded) for an array of scores."""
        s = np.atleast_1d(np.asarray(scores, dtype=np.float64))
        llr_kde = np.asarray(self.kde.llr(s), float)
        llr_cal = np.asarray(self.calibrator.transform(llr_kde), float)
        return {"llr_kde": llr_kde, "llr_calibrated": llr_cal, "llr": np.clip(llr_cal, self.lower, self.upper)}


def _lr_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    cols = read_csv(path, required=("label", "llr_kde"))
    return numeric_column(cols, "llr_kde", path), numeric_column(cols, "label", path, int)


def _scores_csv(path: Path, video: bool) -> tuple[np.ndarray, np.ndarray]:
    """Train scores (frame level, or video level = mean frame score per video_id)."""
    from slr.io import read_scores, video_level
    s = read_scores(path)
    if video:
        if s.video_ids is None:
            raise InputError(f"{path}: no video_id column; the video-level system cannot be rebuilt")
        s = video_level(s)
    return s.hp, s.hd


def load_lr_system(cfg: Config, level: str = "frame") -> LRSystem | None:
    """Rebuild stage 10's ``level`` system from its outputs; None when stage 10 fitted no such level."""
    from slr.calibration import make_calibrator
    from slr.kde import KDELikelihoodRatio

    lr_dir = cfg.path("evidence.lr_dir")
    scores_dir = cfg.path("evidence.scores_dir")
    summary = read_json(lr_dir / "summary.json") if (lr_dir / "summary.json").is_file() else None
    if summary is None:
        raise InputError(f"{lr_dir}: stage 10's summary.json not found (config evidence.lr_dir); run stages 08-10 "
                         f"for this config first")
    if summary.get("protocol") != "sound":
        raise ConfigError(f"{cfg.source}: the run's LRs use slr.protocol={summary.get('protocol')!r}; casework needs "
                          f"the sound protocol (the paper protocol re-fits its KDEs on each evaluated set, so it "
                          f"has no fixed system to apply to a new item)")
    info = (summary.get("levels") or {}).get(level)
    if info is None:
        return None
    bw = info["bandwidth"]
    hp, hd = _scores_csv(scores_dir / "train.csv", video=level == "video")
    kde = KDELikelihoodRatio().fit(hp, hd, float(bw["hp"]), float(bw["hd"]))
    calibration = info.get("calibration", "none")
    val_file = lr_dir / ("val_lr.csv" if level == "frame" else "val_video_lr.csv")
    val_llr, val_labels = _lr_csv(val_file)
    calibrator = make_calibrator(calibration).fit(val_llr, val_labels)
    bounds = (info.get("elub") or {}).get("test") or (info.get("elub") or {}).get("val")
    if not bounds:
        raise InputError(f"{lr_dir / 'summary.json'}: no ELUB bounds for the {level} level")
    return LRSystem(level, kde, calibrator, calibration, float(bounds["lower_log10"]), float(bounds["upper_log10"]),
                    {k: float(v) for k, v in bw.items()}, hp, hd)


# --------------------------------------------------------------------------------- words
def verbal(llr: float, scale: Sequence, hypotheses: dict) -> str:
    """The verbal equivalent of a log10 LR on ``scale`` = [[lowest |LLR|, words with {h}], ...].

    The supported proposition is Hp when LLR > 0, Hd when LLR < 0 (ENFSI 2015 style: the same words
    for LR and 1/LR). Thresholds are inclusive at the lower end.
    """
    try:
        rows = sorted(((float(t), str(w)) for t, w in scale), key=lambda r: r[0])
    except (TypeError, ValueError):
        raise ConfigError("evidence.verbal_scale must be a list of [lowest |log10 LR|, words] pairs") from None
    if not rows or rows[0][0] > 0:
        raise ConfigError("evidence.verbal_scale must start at |log10 LR| = 0")
    if not np.isfinite(llr):
        raise ValueError(f"log10 LR {llr} is not finite; bound it before putting it into words")
    words = rows[0][1]
    for t, w in rows:
        if abs(llr) >= t:
            words = w
    h = hypotheses.get("hp" if llr > 0 else "hd", "Hp" if llr > 0 else "Hd")
    return words.replace("{h}", h)


# --------------------------------------------------------------------------------- the model
class Scorer:
    """Crop faces, run the detector, score against the centroid. Models are loaded once."""

    def __init__(self, cfg: Config, progress: bool = True):
        import torch

        from preprocessing.faces import FaceCropper
        from training.data import input_spec
        from training.dump import checkpoint_path, load_trained_detector
        from training.trainer import resolve_device

        self.cfg = cfg
        self.cropper = FaceCropper.from_options(cfg.section("preprocessing"))
        ckpt = cfg.path("evidence.checkpoint", None) or checkpoint_path(cfg)   # default: the weights stage 04 used
        self.detector = load_trained_detector(cfg, ckpt)
        if getattr(self.detector, "is_video", False):
            raise ConfigError(f"{cfg.source}: model.name={cfg.get('model.name')!r} is a video (window) detector; "
                              f"evidence.py scores single frames and needs a frame detector")
        self.full_map = bool(cfg.get("features.full_map", False))
        self.detector.return_feature_map = self.full_map
        self.device = resolve_device(cfg)
        self.detector.to(self.device).eval()
        self.spec = input_spec(cfg, self.detector)
        centroid_path = cfg.path("evidence.scores_dir") / "centroid.npy"
        if not centroid_path.is_file():
            raise InputError(f"{centroid_path}: stage 08's centroid not found (config evidence.scores_dir); run "
                             f"stage 08 first")
        self.centroid = np.load(centroid_path).astype(np.float64).ravel()
        self.torch = torch

    def features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) float64 features of aligned RGB crops, exactly as stage 04 computes them."""
        from training.data import to_tensor
        import cv2

        size = self.spec.size
        batch = []
        for c in crops:
            if c.shape[0] != size or c.shape[1] != size:
                c = cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA if c.shape[0] > size else cv2.INTER_LINEAR)
            batch.append(to_tensor(c, self.spec.mean, self.spec.std))
        with self.torch.no_grad():
            out = self.detector(self.torch.stack(batch).to(self.device))
        feat = out["feature_map"].flatten(1) if self.full_map else out["feature"]   # as stage 04 (features.full_map)
        feats = feat.float().cpu().numpy().reshape(len(crops), -1).astype(np.float64)
        return feats, out["prob"].float().cpu().numpy()

    def scores(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(cosine similarity to the centroid, fake probability) of each crop."""
        feats, prob = self.features(crops)
        if feats.shape[1] != self.centroid.shape[0]:
            raise InputError(f"the detector's features have {feats.shape[1]} values, stage 08's centroid "
                             f"{self.centroid.shape[0]}: the checkpoint and the scores come from different runs")
        c = self.centroid / np.linalg.norm(self.centroid)
        s = feats @ c / np.linalg.norm(feats, axis=1)
        return np.clip(s, -1.0, 1.0), prob


# --------------------------------------------------------------------------------- input
def read_questioned(path: Path, max_frames: int) -> tuple[str, list[tuple[int, np.ndarray]]]:
    """``("image"|"video", [(frame index, RGB frame)])``; unreadable input is an InputError."""
    from preprocessing.video import read_image, read_video_frames, sample_indices, video_frame_count

    if not path.is_file():
        raise InputError(f"{path}: questioned file not found")
    ext = path.suffix.lower()
    if ext in IMAGE_EXT:
        try:
            return "image", [(0, read_image(path))]
        except Exception as exc:  # the reader's own error type
            raise InputError(f"{path}: cannot read the image ({exc})") from None
    if ext in VIDEO_EXT:
        n = video_frame_count(path)
        idx = sample_indices(n, max_frames)
        frames = [(i, f) for i, f in read_video_frames(path, idx) if f is not None]
        if not frames:
            raise InputError(f"{path}: no frame could be decoded from the video")
        return "video", frames
    raise InputError(f"{path}: unknown file type '{ext}'; give an image ({', '.join(sorted(IMAGE_EXT))}) or a "
                     f"video ({', '.join(sorted(VIDEO_EXT))})")


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


@dataclass
class Track:
    """One face followed across frames."""
    boxes: list = field(default_factory=list)     # (frame index, box)
    crops: list = field(default_factory=list)

    @property
    def last_box(self):
        return self.boxes[-1][1]


def track_faces(frames, cropper, min_fraction: float, min_iou: float = 0.3) -> list[Track]:
    """Faces of every frame (those at least ``min_fraction`` of the largest face's area), linked
    into tracks by box overlap with the previous frame (greedy, largest first)."""
    tracks: list[Track] = []
    for idx, frame in frames:
        faces = cropper.crop_all(frame)
        if not faces:
            continue
        def area(f):
            return max(0, f.box[2] - f.box[0]) * max(0, f.box[3] - f.box[1])
        largest = max(area(f) for f in faces)
        faces = [f for f in faces if area(f) >= min_fraction * largest]
        used = set()
        for f in faces:
            best, best_iou = None, min_iou
            for t_i, t in enumerate(tracks):
                if t_i in used:
                    continue
                v = _iou(f.box, t.last_box)
                if v >= best_iou:
                    best, best_iou = t_i, v
            if best is None:
                tracks.append(Track())
                best = len(tracks) - 1
            used.add(best)
            tracks[best].boxes.append((idx, tuple(int(v) for v in f.box)))
            tracks[best].crops.append(f.crop)
    return tracks


# --------------------------------------------------------------------------------- the command
def _result(system: LRSystem, score: float, scale, hyps) -> dict:
    ev = system.evaluate([score])
    llr_cal, llr = float(ev["llr_calibrated"][0]), float(ev["llr"][0])
    return {"level": system.level, "score": float(score), "log10_lr_kde": float(ev["llr_kde"][0]),
            "log10_lr": llr_cal, "lr": float(10.0 ** llr_cal), "log10_lr_bounded": llr,
            "lr_bounded": float(10.0 ** llr), "elub_bounds_log10": [system.lower, system.upper],
            "bounded": bool(llr != llr_cal), "calibration": system.calibration, "verbal": verbal(llr, scale, hyps)}


def evaluate_file(cfg: Config, path: Path, scorer: Scorer | None = None) -> dict:
    """Everything the command reports for one questioned file (no files written).

    ``{"input", "kind", "frames_examined", "faces": [...], "statement"}``; ``faces`` is empty and
    ``statement`` says so when no face was found.
    """
    scorer = scorer or Scorer(cfg)
    frame_sys = load_lr_system(cfg, "frame")
    video_sys = load_lr_system(cfg, "video")
    scale = cfg.get("evidence.verbal_scale")
    hyps = cfg.section("evidence.hypotheses") or {"hp": "the image is real", "hd": "the image is a deepfake"}
    kind, frames = read_questioned(path, int(cfg.get("evidence.max_frames", 32)))
    tracks = track_faces(frames, scorer.cropper, float(cfg.get("evidence.min_face_fraction", 0.5)))
    out = {"input": str(path), "kind": kind, "frames_examined": len(frames), "faces": [],
           "hypotheses": hyps, "protocol": "sound", "statement": ""}
    for n, t in enumerate(tracks, start=1):
        scores, probs = scorer.scores(t.crops)
        per_frame = [{"frame": int(i), "box": list(b), "score": float(s), "fake_probability": float(p),
                      **{k: v for k, v in _result(frame_sys, s, scale, hyps).items() if k.startswith("log10")}}
                     for (i, b), s, p in zip(t.boxes, scores, probs)]
        face = {"face": n, "frames": [int(i) for i, _ in t.boxes], "box": list(t.boxes[0][1]),
                "fake_probability": float(np.mean(probs)), "per_frame": per_frame, "crop": t.crops[0]}
        if kind == "image":
            face.update(_result(frame_sys, float(scores[0]), scale, hyps))
        elif video_sys is not None:
            face.update(_result(video_sys, float(np.mean(scores)), scale, hyps))
            face["n_frames"] = len(scores)
        else:
            face.update({"level": "video", "score": float(np.mean(scores)), "log10_lr_bounded": None,
                         "verbal": "no video-level LR: stage 10 fitted no video-level system for this run "
                                   "(see per-frame LRs)"})
        out["faces"].append(face)
    if not out["faces"]:
        out["statement"] = (f"No face was found in {path.name} ({len(frames)} frame(s) examined with the "
                            f"{cfg.get('preprocessing.detector', 'hog')} face detector). No likelihood ratio "
                            f"can be given for this item.")
    else:
        out["statement"] = f"{len(out['faces'])} face(s) found in {path.name}; one result per face."
    out["_systems"] = {"frame": frame_sys, "video": video_sys}
    return out


def plot_densities(system: LRSystem, score: float, llr: float, path: Path, title: str) -> Path:
    """Where the score falls on the two training densities (Hp = real, Hd = fake)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    allv = np.r_[system.train_hp, system.train_hd, score]
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.15 * (hi - lo) + 1e-6
    grid = np.linspace(lo - pad, hi + pad, 600)
    f_hp = 10.0 ** system.kde.kde_hp.log10_pdf(grid)
    f_hd = 10.0 ** system.kde.kde_hd.log10_pdf(grid)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(grid, f_hp, color="tab:blue", label="Hp: real (train KDE)")
    ax.plot(grid, f_hd, color="tab:red", label="Hd: fake (train KDE)")
    ax.axvline(score, color="k", ls="--", label=f"questioned score {score:.4f}")
    ax.set_xlabel("score: cosine similarity to the real-train centroid (unitless)")
    ax.set_ylabel("density (per score unit)")
    ax.set_title(f"{title}\nbounded log10 LR = {llr:+.2f}", fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=90)


def _img_tag(path: Path, alt: str, width: int | None = None) -> str:
    import base64
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    w = f' width="{width}"' if width else ""
    return f'<img alt="{alt}"{w} src="data:image/png;base64,{data}">'


def write_outputs(cfg: Config, result: dict, out_dir: Path) -> Path:
    """``out_dir/{evidence.json, evidence.html, face_N.png, density_N.png}``, written atomically."""
    import html

    import cv2

    from common.io import atomic_dir, write_json
    from evaluation.report import DEMO_NOTE

    esc = html.escape
    systems = result.get("_systems", {})
    with atomic_dir(out_dir) as tmp:
        faces_json, blocks = [], []
        for f in result["faces"]:
            n = f["face"]
            crop_file = tmp / f"face_{n}.png"
            cv2.imwrite(str(crop_file), cv2.cvtColor(f["crop"], cv2.COLOR_RGB2BGR))
            fj = {k: v for k, v in f.items() if k != "crop"}
            fj["crop_file"] = crop_file.name
            system = systems.get(f.get("level"))
            dens = ""
            if system is not None and f.get("log10_lr_bounded") is not None:
                dfile = plot_densities(system, f["score"], f["log10_lr_bounded"], tmp / f"density_{n}.png",
                                       f"face {n}, {f['level']} level")
                fj["density_file"] = dfile.name
                dens = _img_tag(dfile, f"densities face {n}")
            faces_json.append(fj)
            rows = [("score (cosine similarity)", f"{f['score']:.6f}"),
                    ("detector fake probability", f"{f['fake_probability']:.4f}"),
                    ("frames", f"{len(f['frames'])} ({'video level' if f.get('level') == 'video' else 'frame level'})")]
            if f.get("log10_lr_bounded") is not None:
                rows += [("LR (calibrated)", f"{f['lr']:.4g}"), ("log10 LR (calibrated)", f"{f['log10_lr']:+.3f}"),
                         ("ELUB bounds (log10)", f"[{f['elub_bounds_log10'][0]:+.2f}, {f['elub_bounds_log10'][1]:+.2f}]"),
                         ("<b>log10 LR, bounded (reported)</b>", f"<b>{f['log10_lr_bounded']:+.3f}</b>"),
                         ("LR, bounded", f"{f['lr_bounded']:.4g}")]
            table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
            blocks.append(f"<div class='face'><h2>Face {n}</h2><div class='row'>"
                          f"<div>{_img_tag(crop_file, f'face {n}', 192)}<br><span class='small'>aligned crop, "
                          f"box {f['box']}</span></div><table>{table}</table><div>{dens}</div></div>"
                          f"<p class='verbal'>{esc(f['verbal'][0].upper() + f['verbal'][1:])}.</p></div>")
        hyps = result["hypotheses"]
        demo = (f"<p class='note'><b>Demonstration run.</b> {esc(DEMO_NOTE)}</p>"
                if cfg.get("demo.enabled", False) else "")
        page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Evidence: {esc(Path(result['input']).name)}</title>
<style>body{{font-family:system-ui,Helvetica,Arial,sans-serif;max-width:1100px;margin:20px auto;padding:0 14px;color:#1d2330}}
table{{border-collapse:collapse;margin:0 16px}}th,td{{border:1px solid #cfd5df;padding:3px 8px;text-align:left;font-size:.9em}}
th{{background:#eef1f6;font-weight:normal}}.row{{display:flex;align-items:flex-start;flex-wrap:wrap;gap:8px}}
.verbal{{font-size:1.1em;background:#eef6ff;border-left:4px solid #2b6cb0;padding:6px 10px}}
.note{{background:#fff4d6;border:1px solid #e0b84c;padding:8px 12px}}.small{{font-size:.8em;color:#555}}
.face{{border-top:2px solid #d6dbe4;margin-top:10px}}</style></head><body>
<h1>Questioned {esc(result['kind'])}: {esc(Path(result['input']).name)}</h1>
<p class="small">Run {esc(str(cfg.output_dir))} · detector {esc(str(cfg.get('model.name', '?')))} · config {esc(cfg.source)} ·
{result['frames_examined']} frame(s) examined.</p>
<p>Propositions: <b>Hp</b>: {esc(hyps.get('hp', 'Hp'))}; <b>Hd</b>: {esc(hyps.get('hd', 'Hd'))}.
LR = f(score | Hp) / f(score | Hd); log10 LR &gt; 0 supports Hp. The reported value is bounded by the run's
ELUB bounds (empirical lower and upper bounds fitted on validation data), which limit how strong the
evidence of this system can be stated.</p>{demo}
<p><b>{esc(result['statement'])}</b></p>
{''.join(blocks)}
<p class="small">The LR is only as good as the match between the questioned material and the run's data
(source, compression, face size); the validation report of this run (15_report/report.html) documents its
performance. Generated by evidence.py.</p></body></html>"""
        (tmp / "evidence.html").write_text(page, encoding="utf-8")
        write_json(tmp / "evidence.json", {k: v for k, v in result.items() if not k.startswith("_") and k != "faces"}
                   | {"faces": faces_json})
    return out_dir
