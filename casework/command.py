"""The casework command end to end: questioned file -> case folder + one line per face + exit code.

Order: config -> input checks and SHA-256 -> case folder (never another input's) -> the saved LR
system (``evidence.lr_system``, verified by its SHA-256) and the detector -> frames (stage 01's
reader and sampling) -> the system's validation verdict (``evaluation.verdict``: the report's
judgement of ``report.criteria``; a system that failed or is degenerate gives no LR unless
``--allow-unvalidated-system`` or ``evidence.allow_unvalidated_system``, and then every output says
NOT VALIDATED above the number) -> faces (stage 01's cropper; a face smaller than
``evidence.min_face_fraction`` of the largest is listed, not assessed) -> per face: score (stage 04 +
the system's score function), level (video only for a track whose length lies in the validated range),
conditions (measured, then compared with the system's calib conditions), LR (bounded) or none ->
``evidence.{json,html,pdf}``.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from common.conditions import FRAME_CONDITIONS, VIDEO_CONDITIONS, check_conditions, measure_item
from common.config import Config, ConfigError
from common.io import InputError, sha256_file
from common.videos import video_means

from . import custody
from .faces import build_cropper, crop_options, track_faces
from .inputs import Questioned, check_path, read_questioned
from .outcome import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_NO_FACE, EXIT_OK, EXIT_OUTSIDE, EXIT_UNVALIDATED, CaseworkError
from .fused import FusedScorer, is_fused
from .scoring import system_scores
from .statement import OUTSIDE, annex, fmt_lr, headline, interval_sentence, verbal

log = logging.getLogger(__name__)

def settings(cfg: Config) -> dict:
    """The ``evidence`` section (types, ranges and defaults come from common/schema.py)."""
    hyps = cfg.get("evidence.hypotheses")
    if not hyps.get("hp") or not hyps.get("hd"):
        raise ConfigError(f"{cfg.source}: evidence.hypotheses.hp and .hd must be non-empty texts (the propositions)")
    frac = float(cfg.get("evidence.min_face_fraction"))
    if not 0 < frac <= 1:
        raise ConfigError(f"{cfg.source}: evidence.min_face_fraction must be in (0, 1], got {frac!r}")
    return {
        "output": cfg.path("evidence.output"),
        "checkpoint": cfg.path("evidence.checkpoint"),
        "lr_system": cfg.path("evidence.lr_system"),
        "max_frames": cfg.get("evidence.max_frames"),
        "min_face_fraction": frac,
        "hypotheses": {"hp": str(hyps["hp"]), "hd": str(hyps["hd"])},
        "population": str(cfg.get("evidence.population")),
        "verbal_scale": cfg.get("evidence.verbal_scale"),
        "verbal_scale_source": str(cfg.get("evidence.verbal_scale_source")),
        "allow_unvalidated": bool(cfg.get("evidence.allow_unvalidated_system")),
        "criteria": cfg.get("report.criteria") or [],
    }


def system_dir(cfg: Config, st: dict) -> Path:
    """``evidence.lr_system``, or (null) the robustness stage's system when current, else stage 10's."""
    if st["lr_system"] is not None:
        return Path(st["lr_system"])
    from slr.saved import casework_system_dir
    return casework_system_dir(cfg)


def load_system(path: Path):
    from slr.system import LRSystem
    if not Path(path).is_dir():
        raise InputError(f"{path}: no saved LR system (config evidence.lr_system); run stage 10 of this config "
                         f"(python run_pipeline.py --config ... --to 10) first")
    return LRSystem.load(path)


def _checkpoint(cfg: Config, st: dict) -> Path:
    from training.dump import checkpoint_path
    return Path(st["checkpoint"]) if st["checkpoint"] else checkpoint_path(cfg)


def _track_range(system) -> tuple | None:
    rng = ((system.conditions or {}).get("ranges") or {}).get("track_length") or {}
    return None if rng.get("min") is None else (rng["min"], rng["max"])


def check_validation(system, st: dict, args) -> dict:
    """The system's validation verdict (``evaluation.verdict``); CaseworkError(EXIT_UNVALIDATED) when it
    did not pass and neither ``--allow-unvalidated-system`` nor ``evidence.allow_unvalidated_system`` is set."""
    from evaluation.verdict import PASSED, describe, judge_system

    v = judge_system(system, st["criteria"])
    v["allowed_by"] = None
    if v["status"] != PASSED:
        if getattr(args, "allow_unvalidated_system", False):
            v["allowed_by"] = "--allow-unvalidated-system"
        elif st["allow_unvalidated"]:
            v["allowed_by"] = "evidence.allow_unvalidated_system"
        else:
            raise CaseworkError(EXIT_UNVALIDATED, f"{describe(v)}. No LR is given from a system that did not pass "
                                                  f"validation (see the run's validation report, stage 16); "
                                                  f"--allow-unvalidated-system gives it with NOT VALIDATED above it")
    v["text"] = describe(v)
    what = {"degenerate": "is a degenerate system", "failed": "failed validation"}.get(v["status"], "was not validated")
    v["warning"] = None if v["allowed_by"] is None else (
        f"NOT VALIDATED: the LR system (SHA-256 {(v['sha256'] or 'unknown')[:12]}...) {what} ({v['n_failed']} of "
        f"{v['n_criteria']} criteria not passed); the LR below is given only because {v['allowed_by']} is set")
    return v


def _level(q: Questioned, t, system) -> tuple[str, list, list, list]:
    """(level, frame positions used, condition names, notes) of one track."""
    notes = []
    names = list(FRAME_CONDITIONS)
    level, rows = "frame", [t.largest()]
    if q.kind == "video":
        rng = _track_range(system)
        has_video = "video" in (system.levels or {})
        if has_video and rng is not None and rng[0] <= len(t.frames) <= rng[1]:
            level, rows = "video", list(range(len(t.frames)))
            names += list(VIDEO_CONDITIONS)
        else:
            why = ("the LR system has no video-level model" if not has_video else
                   "the LR system records no validated track lengths" if rng is None else
                   f"the face's track has {len(t.frames)} frame(s), "
                   f"{'fewer' if len(t.frames) < rng[0] else 'more'} than the validated range "
                   f"[{rng[0]:.0f}, {rng[1]:.0f}] of the video-level system")
            notes.append(f"frame-level statement instead of a video-level one: {why}; the frame with the "
                         f"largest face (frame {t.frames[rows[0]]}) is evaluated, the other frames' values "
                         f"are in the technical annex")
    return level, rows, names, notes


def not_assessed(n: int, t, system) -> dict:
    """The result of a face that is listed but not assessed: its box, frames and why."""
    i = t.largest()
    measured = {"face_box_px": {"value": t.measures[i].get("face_box_px"), "note": ""}}
    cond = check_conditions(measured, system.conditions, ["face_box_px"])
    size = next((e["reason"] for k in ("inside", "outside", "not_checked") for e in cond[k]), "")
    why = f"{t.not_assessed}; its face box: {size}" if size else t.not_assessed
    return {"face": n, "assessed": False, "not_assessed_reason": why, "level": None, "frames": [t.frames[i]],
            "track_frames": list(t.frames), "box": list(t.boxes[i]), "log10_lr_bounded": None, "lr_bounded": None, "verbal": None,
            "lr_bounded_text": None, "statement": f"Face {n}: not assessed: {why}.", "notes": [], "warning": None,
            "validation_warning": None, "system_validation": None}


def evaluate_faces(q: Questioned, tracks, scorer, system, st: dict, allow_outside: bool,
                   validation: dict | None = None) -> list[dict]:
    """One result per track (see the module docstring)."""
    validation = validation or {}
    return [not_assessed(n, t, system) if t.not_assessed else
            _assess_track(n, q, t, scorer, system, st, allow_outside, validation)
            for n, t in enumerate(tracks, start=1)]


def _track_conditions(q: Questioned, t, system, rows, names, level: str) -> tuple[dict, dict]:
    """(measured, checked) conditions of the track's frames used for the statement."""
    measured = measure_item(q.path, q.kind, [t.measures[i] for i in rows],
                            frames_read=q.frames_read, track_length=len(t.frames))
    cond = check_conditions(measured, system.conditions, names)
    if level == "frame" and q.kind == "video":
        cond["not_checked"] += [{"name": k, "value": measured[k]["value"], "range": None,
                                 "reason": "a frame-level statement: the video's frame counts do not apply"}
                                for k in VIDEO_CONDITIONS]
    return measured, cond


def _assess_track(n: int, q: Questioned, t, scorer, system, st: dict, allow_outside: bool,
                  validation: dict) -> dict:
    """The result for one assessed face track: score, LR, conditions, statement and annex."""
    out = scorer.run(t.crops)
    scores = system_scores(system, out)
    level, rows, names, notes = _level(q, t, system)
    if (system.validation or {}).get("casework_system") == "calib+test":
        notes.append(f"The LR was computed by the LR system {system.validation['note']}; this system's "
                     f"SHA-256 is {system.sha256}.")
    if level == "video":          # the pipeline's video score: common.videos.video_means (bit-identical)
        score = float(video_means(np.zeros(len(rows), dtype=int), scores[rows]).scores[0])
    else:
        score = float(scores[rows[0]])
    measured, cond = _track_conditions(q, t, system, rows, names, level)
    llr_b = float(system.llr(np.array([score]), level=level, bounded=True)[0])
    llr_u = float(system.llr(np.array([score]), level=level, bounded=False)[0])
    bounds = [float(v) for v in system.bounds_log10(level)]
    if bounds[1] - bounds[0] <= 0:
        notes.append(f"the LR system's {level}-level ELUB bounds are zero-width ([{bounds[0]:+.2f}, "
                     f"{bounds[1]:+.2f}]): it cannot support either proposition (a degenerate system; see its "
                     f"validation report)")
    if not cond["inside"]:
        notes.append("no condition of the item could be compared with validated conditions (the LR system "
                     "records none that apply): the item's similarity to the validation data is not established")
    outside = bool(cond["outside"])
    give = not outside or allow_outside
    per_frame = [{"frame": int(f), "box": list(b), "score": float(s),
                  "log10_lr_unbounded": float(system.llr(np.array([s]), level="frame", bounded=False)[0]) if give else None,
                  "fake_probability": float(p)}
                 for f, b, s, p in zip(t.frames, t.boxes, scores, out["fake_probability"])]
    prob = float(np.mean(out["fake_probability"][rows]))
    logit = float(np.mean(out["logit"][rows]))
    res = {"face": n, "assessed": True, "level": level, "frames": [t.frames[i] for i in rows],
           "box": list(t.boxes[rows[0]]), "bounds_log10": bounds, "conditions": cond, "notes": notes,
           "warning": None, "system_validation": validation.get("status"),
           "validation_warning": validation.get("warning") if give else None}
    res["level_text"] = (f"video level: the mean score of the face's {len(rows)} frames, video-level LR system"
                         if level == "video" else
                         f"frame level: one frame (frame {t.frames[rows[0]]}), frame-level LR system")
    _add_statement(res, n, system, st, level, score, llr_b, give)
    res["annex"] = annex(system, level, score, llr_u if give else None, prob, logit, per_frame)
    res["measured"] = measured
    return res


def _add_statement(res: dict, n: int, system, st: dict, level: str, score: float, llr_b: float, give: bool) -> None:
    """The LR, its words and interval (``give``), else the outside-conditions refusal; a warning when both."""
    hyps = st["hypotheses"]
    outside = res["conditions"]["outside"]
    if give:
        words = verbal(llr_b, st["verbal_scale"], hyps)
        res.update(log10_lr_bounded=llr_b, lr_bounded=float(10.0 ** llr_b), verbal=words,
                   lr_bounded_text=fmt_lr(10.0 ** llr_b),
                   statement=headline(10.0 ** llr_b, llr_b, words, hyps))
        ci = system.level(level).interval([score])
        if ci is not None:                 # slr.case_interval: stored in the saved system at fit time
            res["log10_lr_interval95"] = [float(ci[0][0]), float(ci[1][0])]
            res["statement"] += " " + interval_sentence(*res["log10_lr_interval95"], st["verbal_scale"], hyps)
        if outside:
            res["warning"] = (f"Warning: {OUTSIDE} by default; the LR below is given only because "
                              f"--allow-outside-conditions was set. Outside: "
                              + "; ".join(f"{e['name']} {e['reason']}" for e in outside) + ".")
    else:
        res.update(log10_lr_bounded=None, lr_bounded=None, verbal=None, lr_bounded_text=None,
                   statement=f"Face {n}: {OUTSIDE} (" + "; ".join(f"{e['name']} {e['reason']}"
                                                                      for e in outside) + ").")


def add_args(parser) -> None:
    parser.add_argument("--input", required=True, help="the questioned image or video file")
    parser.add_argument("--output", default=None,
                        help="folder that holds the case folders (default evidence.output)")
    parser.add_argument("--case-id", default=None,
                        help="name of the case folder (default <input name>_<first 12 hex of its SHA-256>)")
    parser.add_argument("--allow-outside-conditions", action="store_true",
                        help="give the LR even outside the validated conditions (with the warning above it)")
    parser.add_argument("--allow-unvalidated-system", action="store_true",
                        help="give the LR even from an LR system that failed validation or is degenerate "
                             "(NOT VALIDATED above it in every output)")


def _statement(results: list, path: Path, q: Questioned, detector: str) -> tuple[str, int]:
    """The item's one-sentence outcome and the exit code."""
    if not results:
        return (f"No face was found in {path.name} ({q.frames_read} frame(s) examined with the {detector} face "
                f"detector of stage 01). No likelihood ratio can be given for this item.", EXIT_NO_FACE)
    skipped = [r["face"] for r in results if not r["assessed"]]
    withheld = [r["face"] for r in results if r["assessed"] and r["log10_lr_bounded"] is None]
    n_assessed = len(results) - len(skipped)
    text = (f"{len(results)} face(s) found in {path.name}: {n_assessed} assessed, {len(skipped)} not assessed; "
            f"one result per face." if skipped else f"{len(results)} face(s) found in {path.name}; one result per face.")
    if withheld:
        text += f" Face(s) {', '.join(map(str, withheld))}: {OUTSIDE}."
    if skipped:
        text += f" Face(s) {', '.join(map(str, skipped))}: not assessed (the reason is given per face)."
    return text, EXIT_OUTSIDE if withheld else EXIT_OK


def _overview(tracks) -> tuple | None:
    """The first frame any face appears in, with the numbered boxes of the faces in it."""
    if not tracks:
        return None
    first = min(range(len(tracks)), key=lambda i: tracks[i].frames[0])
    f0 = tracks[first].frames[0]
    boxes = [(n, t.boxes[t.frames.index(f0)]) for n, t in enumerate(tracks, start=1) if f0 in t.frames]
    return tracks[first].first_frame, boxes


def _print(record: dict, folder: Path, previous: str | None) -> None:
    """The terminal's account: re-run, notes, the validation verdict, one line per face, the folder."""
    from evaluation.verdict import describe

    inp, val = record["input"], record["validation"]
    if previous is not None:
        print(f"re-run: {folder} already held this input's case (SHA-256 {inp['sha256'][:12]}..., written "
              f"{previous}); it was re-created (only the time differs)")
    for t in record["notes"]:
        print(f"note: {t}")
    results = record["results"]
    if not results:                                        # one line: the outcome and where it is recorded
        print(f"{record['statement']} Case folder: {folder}")
        return
    print(record["statement"])
    print(describe(val, reasons=False))          # the degenerate reasons: evidence.html
    for r in results:
        if r.get("validation_warning"):
            print(r["validation_warning"])
        if r.get("warning"):
            print(r["warning"])
        flag = "NOT VALIDATED: " if r.get("validation_warning") else ""
        print(f"  face {r['face']}: {flag}{r['statement']}")
        for t in r["notes"]:
            print(f"    note: {t}")
    print(f"case folder: {folder} (evidence.html, evidence.pdf, evidence.json)")


def _scorer(cfg: Config, st: dict, system, sdir: Path, ckpt):
    """The detector(s) of the saved system, each checked against the identity it recorded (exit 2 on another)."""
    from training.dump import FrameScorer
    from training.identity import check_detector
    if is_fused(system):                                   # every member detector, each checked (casework/fused.py)
        if st["checkpoint"] is not None:
            raise ConfigError(f"{cfg.source}: evidence.checkpoint is set, but {sdir} is a fused system: each member's "
                              f"checkpoint comes from its run folder (the system's slr.fusion.members); unset it")
        return FusedScorer(system, cfg, sdir)
    scorer = FrameScorer(cfg, ckpt, who="evidence.py")
    check_detector(system.detector, scorer.identity, "evidence.checkpoint", sdir)
    return scorer


def run(cfg: Config, args, argv: Sequence[str] | None = None) -> int:
    """The command; returns its exit code (CaseworkError/ConfigError/InputError are raised)."""
    st = settings(cfg)
    path = Path(args.input).expanduser()
    path = path.resolve() if path.exists() else path.absolute()
    check_path(path)
    sha = sha256_file(path)
    root = Path(args.output).expanduser().resolve() if args.output else Path(st["output"])
    folder = custody.case_folder(root, path, sha, args.case_id)
    previous = custody.check_case_folder(folder, sha)

    opts = crop_options(cfg)                               # the one options object (stage 01's)
    fpv = st["max_frames"] or opts["frames_per_video"]
    stride = None if st["max_frames"] else opts["frame_stride"]
    q = read_questioned(path, fpv, stride)                 # bad input ends here, before any model loads

    sdir = system_dir(cfg, st)
    system = load_system(sdir)
    ckpt = _checkpoint(cfg, st)
    scorer = _scorer(cfg, st, system, sdir, ckpt)
    validation = check_validation(system, st, args)        # no LR from an unvalidated system (by default)
    cropper = build_cropper(opts)
    tracks = track_faces(q.frames, cropper, st["min_face_fraction"])
    results = evaluate_faces(q, tracks, scorer, system, st, bool(args.allow_outside_conditions), validation)
    statement, code = _statement(results, path, q, opts["detector"])
    record = {
        "input": {"path": str(path), "sha256": sha, "size_bytes": int(path.stat().st_size), "kind": q.kind,
                  "frames_read": q.frames_read, "frames_expected": q.frames_expected},
        "system": {"lr_system_sha256": system.sha256, "checkpoint_sha256": custody.file_sha256(ckpt),
                   "config_sha256": custody.config_sha256(cfg), "code_version": custody.code_version(),
                   "detector": scorer.identity},
        "validation": validation,
        "lr_system_path": str(sdir),
        "created_utc": custody.utc_now(),
        "command_line": custody.command_line(argv),
        "case_id": folder.name,
        "statement": statement,
        "notes": list(q.notes),
        "propositions": {**st["hypotheses"], "population": st["population"]},
        "verbal_scale_source": st["verbal_scale_source"],
        "exit_code": code,
        "results": results,
    }
    crops = {r["face"]: tracks[r["face"] - 1].crops[tracks[r["face"] - 1].frames.index(r["frames"][0])]
             for r in results}
    demo_note = None
    if cfg.get("demo.enabled"):
        from evaluation.report import DEMO_NOTE
        demo_note = DEMO_NOTE
    from .report import write_case
    write_case(folder, record, crops, _overview(tracks), demo_note, system.validation)
    _print(record, folder, previous)
    return code


def main(argv: Sequence[str] | None = None, description: str | None = None) -> int:
    """Parse, run, and turn every expected failure into its exit code and one line (no traceback)."""
    from common.cli import config_path, setup_logging, stage_parser
    from common.config import load_config

    import argparse

    from .outcome import EXIT_CODES

    parser = stage_parser(description)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "exit codes:\n" + "\n".join(f"  {c}  {t}" for c, t in sorted(EXIT_CODES.items()))
    add_args(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(config_path(args), args.overrides)
        if getattr(args, "print_config", False):
            from common.config import describe_config
            print(describe_config(cfg))
            return EXIT_OK
        return run(cfg, args, ["evidence.py", *argv])
    except CaseworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): no case folder was written or changed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ConfigError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
