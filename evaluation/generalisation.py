"""Generalisation of the saved LR system to data sets it never saw (stage 15b; issue 18 item 8).

Each set of ``validation.external`` is a folder in the layout stage 01 writes (``<root>/<real|fake>/
frames/<video_id>/*.png``); a set with ``input`` (videos, frame folders or images under
``<input>/<real|fake>/``) is first cropped into ``root`` by stage 01's ``run_crop`` with this run's
``preprocessing`` options (videos already cropped are kept), which also writes the manifest. Its frames are scored as casework
scores a face: stage 04's detector pass (``training.dump.FrameScorer``), then the saved system's
score function (``LRSystem.score`` = ``slr.scores.score_values``) and its bounded LLR, nothing
refitted. The system is the one casework loads (``evaluation.robustness.casework_system_dir``).

Conditions: every frame is compared with the system's validated conditions by
``common.conditions.check_conditions`` (frame-level conditions, as casework does). With stage 01's
``<root>/manifest.csv`` the source frame size and face box come from it (JPEG quality from the
source file when the set's ``input`` is given); a set of bare crops has no source size or box, and
only a JPEG crop's own quality can be compared. A frame with any condition outside is not
accepted: casework would give no LR for it. The figures (Cllr, Cllr_min, EER, AUC, misleading
rates with 95 % person-cluster intervals, slr/bootstrap.py) are those of the accepted frames, with
the figures of all frames beside them; the video level (when the system has one) scores the mean
of a video's accepted frames with the video-level system.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.conditions import FRAME_CONDITIONS, check_conditions, face_box_px, jpeg_quality
from common.config import REPO_ROOT, Config, ConfigError
from common.io import InputError, read_csv, write_csv, write_json
from common.videos import video_means
from slr.bootstrap import pool_metrics

log = logging.getLogger(__name__)

BOX = ("box_left", "box_top", "box_right", "box_bottom")


@dataclass
class ExternalSet:
    name: str
    root: Path
    paths: list            # relative to root, one per frame
    labels: np.ndarray
    videos: np.ndarray
    persons: np.ndarray
    input: Path | None = None


def _path(value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def crop_videos(entry: dict, preprocessing: dict) -> None:
    """Stage 01 on the set's ``input`` (videos, frame folders or images under <input>/<real|fake>/)
    into its ``root``, with this run's ``preprocessing`` options; videos already cropped are kept."""
    from preprocessing.crop import options_from_config, run_crop

    run_crop(_path(entry["input"]), _path(entry["root"]), options_from_config(preprocessing))


def load_set(entry: dict, seed: int) -> ExternalSet:
    """The frames of one ``validation.external`` entry (all, or ``max_frames`` drawn with ``seed``)."""
    from preprocessing.splits import person_function, scan_dataset

    root = _path(entry["root"])
    where = f"validation.external '{entry['name']}' (root {root})"
    try:
        videos = scan_dataset(root)
    except InputError as exc:
        raise InputError(f"{where}: {exc}; for a set of videos give its folder as 'input' (stage 01 crops it "
                         f"into root)") from None
    person = person_function(None, entry.get("person_regex"))
    rows = [(f, v["label"], v["video_id"]) for v in videos for f in v["frames"]]
    mf = entry.get("max_frames")
    if mf is not None and mf < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=mf, replace=False))
        rows = [rows[i] for i in keep]
    labels = np.array([r[1] for r in rows], dtype=np.int64)
    if set(labels.tolist()) != {0, 1}:
        raise InputError(f"{where}: the frames hold only label(s) {sorted(set(labels.tolist()))}; real and fake "
                         f"frames are both needed (<root>/real/frames/... and <root>/fake/frames/...)")
    try:
        persons = np.array([person(r[2]) for r in rows], dtype=str)
    except (InputError, re.error) as exc:
        raise ConfigError(f"{where}: person_regex: {exc}") from None
    return ExternalSet(entry["name"], root, [r[0] for r in rows], labels, np.array([r[2] for r in rows], dtype=str),
                       persons, _path(entry.get("input")))


def measured_conditions(ext: ExternalSet) -> list[dict]:
    """Per frame ``{condition: {"value", "note"}}`` (see the module docstring for what is measured)."""
    manifest = ext.root / "manifest.csv"
    rows = {}
    if manifest.is_file():
        cols = read_csv(manifest, required=("crop", "source", "frame_width", "frame_height") + BOX)
        rows = {c: i for i, c in enumerate(cols["crop"]) if c}
    jpeg_cache: dict = {}

    def jpeg(path: Path):
        if path not in jpeg_cache:
            jpeg_cache[path] = jpeg_quality(path)
        return jpeg_cache[path]

    out = []
    for p in ext.paths:
        i = rows.get(p)
        if i is None:
            why = ("no row for this crop in stage 01's manifest" if rows else
                   "a set of crops without stage 01's manifest.csv: the source frame and face box are unknown")
            m = {k: {"value": None, "note": why} for k in ("image_width_px", "image_height_px", "face_box_px")}
            q, note = jpeg(ext.root / p)
            m["jpeg_quality"] = {"value": q, "note": note + (" (the crop file's own)" if q is not None else "")}
        else:
            box = [float(cols[k][i]) for k in BOX]
            m = {"image_width_px": {"value": float(cols["frame_width"][i]), "note": ""},
                 "image_height_px": {"value": float(cols["frame_height"][i]), "note": ""},
                 "face_box_px": {"value": face_box_px(box), "note": ""}}
            q, note = jpeg(ext.input / cols["source"][i]) if ext.input is not None else \
                (None, "the set's stage-01 input folder (validation.external[].input) is not given")
            m["jpeg_quality"] = {"value": q, "note": note}
        m["blockiness"] = {"value": None, "note": "source frames are not read by stage 15b"}
        out.append(m)
    return out


def score_set(frame_scorer, system, ext: ExternalSet, chunk: int = 256, progress: bool = True) -> np.ndarray:
    """The saved system's score of every frame (stage 04's detector pass, then ``LRSystem.score``)."""
    from tqdm.auto import tqdm

    from evaluation.robustness import read_crop

    out = []
    for a in tqdm(range(0, len(ext.paths), chunk), desc=f"scoring {ext.name}", unit="chunk", disable=not progress):
        crops = [read_crop(ext.root / p) for p in ext.paths[a:a + chunk]]
        out.append(np.asarray(system.score(**frame_scorer.run(crops)), dtype=np.float64))
    return np.concatenate(out)


def _metrics(llr, labels, persons, videos, n: int, seed: int) -> dict | None:
    if len(set(np.asarray(labels).tolist())) < 2:
        return None
    return pool_metrics(llr, labels, persons, videos, n, seed)


def set_summary(system, ext: ExternalSet, scores: np.ndarray, checks: list[dict], n: int, seed: int
                ) -> tuple[dict, np.ndarray, np.ndarray]:
    """(the set's summary block, frame LLRs, accepted mask)."""
    llr = system.llr(scores, "frame")
    ok = np.array([not c["outside"] for c in checks], dtype=bool)
    outside: dict[str, int] = {}
    for c in checks:
        for e in c["outside"]:
            outside[e["name"]] = outside.get(e["name"], 0) + 1
    never = sorted({e["name"] for c in checks for e in c["not_checked"]} - {e["name"] for c in checks for e in
                                                                            c["inside"] + c["outside"]})
    levels = {"frame": _metrics(llr[ok], ext.labels[ok], ext.persons[ok], ext.videos[ok], n, seed)}
    if "video" in system.levels and ok.any():
        v = video_means(ext.videos[ok], scores[ok], ext.labels[ok])
        first = dict(zip(ext.videos[ok][::-1], ext.persons[ok][::-1]))
        vp = np.array([first[x] for x in v.video_ids], dtype=str)
        levels["video"] = _metrics(system.llr(v.scores, "video"), v.labels, vp, v.video_ids, n, seed)
    block = {"root": str(ext.root), "n_items": int(len(ok)), "n_accepted": int(ok.sum()),
             "n_outside": int((~ok).sum()), "outside_by_condition": outside, "never_checked": never,
             "n_persons": int(len(np.unique(ext.persons))), "n_videos": int(len(np.unique(ext.videos))),
             "levels": {lv: m for lv, m in levels.items() if m is not None},
             "all_items": {"frame": _metrics(llr, ext.labels, ext.persons, ext.videos, n, seed)},
             "note": "figures of the accepted frames (no condition outside the validated ranges); all_items: every "
                     "frame, conditions ignored"}
    if levels["frame"] is None:
        block["note"] = "the accepted frames do not hold both classes: no figures; all_items ignores the conditions"
    return block, llr, ok


def run(cfg: Config, out: Path, progress: bool = True) -> dict:
    """Stage 15b: every set of ``validation.external`` -> ``summary.json`` and ``<name>_lr.csv``."""
    from evaluation.robustness import casework_system_dir
    from slr.system import LRSystem
    from training.dump import FrameScorer

    entries = cfg.get("validation.external") or []
    if not entries:
        raise ConfigError(f"{cfg.source}: validation.external is empty; name at least one data set (stage 15b)")
    sys_dir = casework_system_dir(cfg)
    if not (sys_dir / "system.json").is_file():
        raise InputError(f"{sys_dir}: no saved LR system; run stage 10 first")
    system = LRSystem.load(sys_dir)
    scorer = FrameScorer(cfg, who="the generalisation stage (15b)", remedy=": set validation.external: []")
    n, seed = int(cfg.get("slr.bootstrap.n")), int(cfg.get("slr.bootstrap.seed"))
    summary = {"system": {"dir": str(sys_dir), "sha256": system.sha256}, "criteria_names": list(FRAME_CONDITIONS),
               "sets": {}}
    for entry in entries:
        if entry.get("input"):
            crop_videos(entry, cfg.section("preprocessing"))
        ext = load_set(entry, int(cfg.get("seed")))
        checks = [check_conditions(m, system.conditions, FRAME_CONDITIONS) for m in measured_conditions(ext)]
        scores = score_set(scorer, system, ext, progress=progress)
        block, llr, ok = set_summary(system, ext, scores, checks, n, seed)
        summary["sets"][ext.name] = block
        write_csv(out / f"{ext.name}_lr.csv", {
            "image_path": ext.paths, "person_id": list(ext.persons), "video_id": list(ext.videos),
            "label": [int(x) for x in ext.labels], "score": [float(x) for x in scores],
            "llr": [float(x) for x in llr], "accepted": [int(x) for x in ok],
            "outside": ["; ".join(e["name"] for e in c["outside"]) for c in checks]})
    write_json(out / "summary.json", summary)
    return summary
