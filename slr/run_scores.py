"""Bring your own scores: run stages 09-14 on score CSVs from any system and write the validation report.

    python -m slr.run_scores --scores-dir DIR --output-dir OUT [--protocol sound|paper]
        [--model kde|logistic|isotonic|auto] [--calibration none|pav|logistic] [--bounds elub|iv]
        [--case-interval N] [--bootstrap N] [--seed S] [--fusion logistic] [--force]
        [--validation four_pools|crossval] [--crossval-folds K]

Columns of every CSV: ``score`` and ``label`` (0 = real = Hp, 1 = fake = Hd), optional ``video_id``
(video-level results; frames of one video are dependent) and ``person_id`` (the unit of the
cross-fitting folds and of the bootstrap). Without ``person_id`` each video counts as a person,
without ``video_id`` each row as a video (the console says so). Any score scale and direction works
(the direction is found on calib); the score is recorded as ``user-supplied``.

- ``--protocol sound`` (default): ``DIR/calib.csv`` and ``DIR/test.csv`` are required,
  ``DIR/train.csv`` and ``DIR/val.csv`` optional (reported as diagnostics). The LR system is fitted
  on calib only (docs/slr.md, sound protocol v2); persons must be disjoint across the files.
- ``--fusion logistic`` (sound): instead of ``score``, one column ``score_<detector>`` per detector
  (optional ``source``, e.g. the generator: the unit of the fusion's cross-validation); the scores
  are fused by :mod:`slr.fusion_scores` and the fused score is validated like a single score.
- ``--validation crossval`` (sound; not with ``--fusion``): every person of ``calib.csv`` (and ``test.csv``, optional) is
  validated out of fold (person-grouped ``--crossval-folds`` folds, seed ``--seed``), the saved
  system is fitted on all of them (slr/crossval.py); ``test`` in the summary = the pooled
  out-of-fold LLRs.
- ``--protocol paper``: ``DIR/train.csv``, ``DIR/val.csv``, ``DIR/test.csv`` as in the paper's code.

OUT receives ``summary.json`` (levels.<level>.<pool>.{n_hp, ..., ci95}, system.{bounds_log10,
bandwidth, sha256}), per pool ``<pool>_lr.csv`` (``person_id``, ``video_id``, ``score``, ``label``,
``llr`` = the final log10 LR, plus the intermediate LLRs), the figures of stages 09-14 in
``OUT/<NN_name>/``, under sound the saved LR system in ``OUT/system/``, and ``OUT/report.html``:
the validation report of stage 16 (verdict line, validation matrix with the default
``report.criteria``, the LR system and the figures), written once OUT is complete. OUT is written
atomically; it may neither contain DIR nor lie inside it; an existing OUT must be empty, or an
earlier run_scores output replaced only with ``--force``.

This module is a command on top of the layers (like evidence.py): it may import evaluation, and no
project module imports it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.cli import setup_logging
from common.config import Config, ConfigError
from common.io import InputError, atomic_dir, write_json

from .fusion_scores import fuse_pools
from .interface import system_for
from .io import POOLS
from .pipeline import run_scores
from .settings import BOUNDS, CALIBRATIONS, DEFAULTS, MODELS, PROTOCOLS, USER_SUPPLIED, VALIDATIONS, Settings


def _check_output_dir(out: Path, force: bool = False) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"--output-dir {out} exists and is not a folder")
    entries = [p for p in out.iterdir() if not p.name.startswith(".")]
    if not entries:
        return
    summary = out / "summary.json"
    try:
        ours = summary.is_file() and "protocol" in json.loads(summary.read_text())
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise InputError(f"--output-dir {out} exists and holds other files; give an empty or new folder")
    if not force:
        raise InputError(f"--output-dir {out} holds an earlier run_scores result; add --force to replace it, "
                         f"or give a new folder")


def _check_apart(scores: Path, out: Path) -> None:
    """The output folder is replaced whole, so it must neither contain nor lie inside the input folder."""
    if out == scores or out in scores.parents or scores in out.parents:
        raise InputError(f"--output-dir {out} {'contains' if out in scores.parents else 'is inside' if scores in out.parents else 'is'} "
                         f"the --scores-dir {scores}; replacing it would delete the input scores. Give an output "
                         f"folder outside the scores folder")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m slr.run_scores", description=__doc__.strip().splitlines()[0])
    p.add_argument("--scores-dir", required=True,
                   help="folder with the score CSVs (sound: calib.csv, test.csv [train.csv, val.csv]; "
                        "paper: train.csv, val.csv, test.csv)")
    p.add_argument("--output-dir", required=True, help="folder for the figures, <pool>_lr.csv, summary.json, system/")
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULTS["protocol"],
                   help="sound (fit on calib, cross-fitted calibration and bounds) or paper (the paper's code); "
                        "default %(default)s")
    p.add_argument("--model", choices=MODELS, default=DEFAULTS["model"],
                   help="sound: the score-to-LLR model (default %(default)s)")
    p.add_argument("--calibration", choices=CALIBRATIONS, default=DEFAULTS["calibration"],
                   help="sound: calibration fitted on the cross-fitted calib LLRs (default %(default)s)")
    p.add_argument("--crossfit-folds", type=int, default=DEFAULTS["crossfit_folds"],
                   help="sound: person-grouped cross-fitting folds (default %(default)s)")
    p.add_argument("--bootstrap", type=int, default=DEFAULTS["bootstrap"]["n"],
                   help="person-cluster bootstrap resamples (0 = no intervals; default %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULTS["bootstrap"]["seed"],
                   help="seed of the folds and of the bootstrap (default %(default)s)")
    p.add_argument("--no-video-level", action="store_true", help="skip video-level results")
    p.add_argument("--bounds", choices=BOUNDS, default=DEFAULTS["bounds"],
                   help="sound: elub or iv (Invariance Verification); default %(default)s")
    p.add_argument("--case-interval", type=int, default=DEFAULTS["case_interval"]["n"],
                   help="sound: person-cluster refits for each case LLR's 95 %% interval (0 = off; default %(default)s)")
    p.add_argument("--fusion", choices=("logistic",),
                   help="sound: fuse the columns score_<detector> by logistic regression (slr.fusion); "
                        "without it: one score column")
    p.add_argument("--force", action="store_true", help="replace an earlier run_scores result in --output-dir")
    p.add_argument("--validation", choices=VALIDATIONS, default=DEFAULTS["validation"],
                   help="sound: four_pools (fit on calib.csv, validate on test.csv) or crossval (every person of "
                        "calib.csv [+ test.csv] validated out of fold; slr/crossval.py); default %(default)s")
    p.add_argument("--crossval-folds", type=int, default=DEFAULTS["crossval"]["folds"],
                   help="crossval: person-grouped folds (default %(default)s)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    try:
        settings = Settings(protocol=args.protocol, calibration=args.calibration, seed=args.seed, score=USER_SUPPLIED,
                            video_level=not args.no_video_level, model=args.model,
                            crossfit_folds=args.crossfit_folds, bootstrap_n=args.bootstrap, bootstrap_seed=args.seed,
                            bounds=args.bounds, case_interval_n=args.case_interval, case_interval_seed=args.seed,
                            validation=args.validation, crossval_folds=args.crossval_folds, crossval_seed=args.seed)
        out = Path(args.output_dir).resolve()
        _check_apart(Path(args.scores_dir).resolve(), out)
        fusion = None
        if args.fusion == "logistic":
            if args.protocol != "sound":
                raise ConfigError("--fusion logistic needs --protocol sound (the fusion is fitted on calib)")
            if args.validation == "crossval":
                raise ConfigError("--fusion logistic needs --validation four_pools (the fusion is fitted on calib, "
                                  "which crossval validates out of fold)")
            sets, fusion = fuse_pools(Path(args.scores_dir), POOLS, settings)
        else:
            sets = system_for(settings).read_pools(args.scores_dir)
        _check_output_dir(out, args.force)
        _say_dependence(sets)
        with atomic_dir(out) as tmp:
            summary = run_scores(sets, tmp, settings)
            if fusion is not None:
                summary["fusion"] = fusion
                write_json(tmp / "summary.json", summary)
                print(f"fusion: {fusion['reason']}")
    except (ConfigError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = write_report(out, Path(args.scores_dir).resolve())
    t = summary["levels"]["frame"]["test"]
    ci = t.get("ci95", {}).get("cllr") or [None, None]
    ci_txt = f" (95 % person interval {ci[0]:.4f}-{ci[1]:.4f})" if ci[0] is not None else ""
    print(f"run_scores ({args.protocol}): test Cllr {t['cllr']:.4f} bits{ci_txt}, Cllr_min {t['cllr_min']:.4f}, "
          f"EER {100 * t['eer']:.2f}%, AUC {t['auc']:.4f}")
    print(f"outputs written to {out} (summary.json, <pool>_lr.csv, 09_*..14_* figures"
          f"{', system/' if summary['system'].get('sha256') else ''})")
    print(f"{verdict['line']} Report: {out / 'report.html'}")
    return 0


def _say_dependence(sets: dict) -> None:
    """The console says which rows the cross-fitting folds and the intervals treat as independent."""
    for pool, s in sets.items():
        if s.person_ids is None:
            unit = "video (video_id)" if s.video_ids is not None else "row"
            print(f"note: {Path(s.source).name} has no person_id column: the cross-fitting folds and the 95 % "
                  f"intervals treat every {unit} as an independent person; add person_id if one person "
                  f"appears in several {'videos' if s.video_ids is not None else 'rows'}")


def write_report(out: Path, scores_dir: Path) -> dict:
    """``out/report.html``: stage 16's validation report of the LR sections (the default
    report.criteria), the score recorded as user-supplied; returns its verdict."""
    from common.io import atomic_path
    from evaluation.report import load_run, render

    cfg = Config({"experiment": f"own scores ({scores_dir.name})", "output_dir": str(out)},
                 f"python -m slr.run_scores (default report.criteria; scores {scores_dir})")
    html, report = render(load_run(out), cfg, own_scores=str(scores_dir))
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(html, encoding="utf-8")
    return report["verdict"]


if __name__ == "__main__":
    sys.exit(main())
