"""Bring your own scores: run stages 09-14 on score CSVs from any system.

    python -m slr.run_scores --scores-dir DIR --output-dir OUT [--protocol sound|paper]
        [--model kde|logistic|isotonic] [--calibration none|pav|logistic] [--bootstrap N] [--seed S]
        [--validation four_pools|crossval] [--crossval-folds K]

Columns of every CSV: ``score`` and ``label`` (0 = real = Hp, 1 = fake = Hd), optional ``video_id``
(video-level results; frames of one video are dependent) and ``person_id`` (the unit of the
cross-fitting folds and of the bootstrap). Without ``person_id`` each video counts as a person,
without ``video_id`` each row as a video. Any score scale and direction works (the direction is
found on calib).

- ``--protocol sound`` (default): ``DIR/calib.csv`` and ``DIR/test.csv`` are required,
  ``DIR/train.csv`` and ``DIR/val.csv`` optional (reported as diagnostics). The LR system is fitted
  on calib only (docs/slr.md, sound protocol v2); persons must be disjoint across the files.
- ``--validation crossval`` (sound): every person of ``calib.csv`` (and ``test.csv``, optional) is
  validated out of fold (person-grouped ``--crossval-folds`` folds, seed ``--seed``), the saved
  system is fitted on all of them (slr/crossval.py); ``test`` in the summary = the pooled
  out-of-fold LLRs.
- ``--protocol paper``: ``DIR/train.csv``, ``DIR/val.csv``, ``DIR/test.csv`` as in the paper's code.

OUT receives ``summary.json`` (levels.<level>.<pool>.{n_hp, ..., ci95}, system.{bounds_log10,
bandwidth, sha256}), per pool ``<pool>_lr.csv`` (``person_id``, ``video_id``, ``score``, ``label``,
``llr`` = the final log10 LR, plus the intermediate LLRs), the figures of stages 09-14 in
``OUT/<NN_name>/`` and, under sound, the saved LR system in ``OUT/system/``. OUT is written
atomically; an existing OUT is replaced only if it is empty or an earlier run_scores output, and
it may neither contain DIR nor lie inside it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.cli import setup_logging
from common.config import ConfigError
from common.io import InputError, atomic_dir

from .io import read_score_dir
from .pipeline import SOUND_OPTIONAL, SOUND_REQUIRED, run_scores
from .settings import CALIBRATIONS, MODELS, PROTOCOLS, VALIDATIONS, Settings


def _check_output_dir(out: Path) -> None:
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
        raise InputError(f"--output-dir {out} exists and holds other files; give an empty or new folder "
                         f"(an earlier run_scores output is replaced)")


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
    p.add_argument("--protocol", choices=PROTOCOLS, default="sound",
                   help="sound (fit on calib, cross-fitted calibration and bounds) or paper (the paper's code)")
    p.add_argument("--model", choices=MODELS, default="kde", help="sound: the score-to-LLR model (default kde)")
    p.add_argument("--calibration", choices=CALIBRATIONS, default="none",
                   help="sound: calibration fitted on the cross-fitted calib LLRs (default none)")
    p.add_argument("--crossfit-folds", type=int, default=5, help="sound: person-grouped cross-fitting folds")
    p.add_argument("--bootstrap", type=int, default=1000, help="person-cluster bootstrap resamples (0 = no intervals)")
    p.add_argument("--seed", type=int, default=1024, help="seed of the folds and of the bootstrap")
    p.add_argument("--no-video-level", action="store_true", help="skip video-level results")
    p.add_argument("--validation", choices=VALIDATIONS, default="four_pools",
                   help="sound: four_pools (fit on calib.csv, validate on test.csv) or crossval (every person of "
                        "calib.csv [+ test.csv] validated out of fold; slr/crossval.py)")
    p.add_argument("--crossval-folds", type=int, default=5, help="crossval: person-grouped folds")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    try:
        settings = Settings(protocol=args.protocol, calibration=args.calibration, seed=args.seed,
                            video_level=not args.no_video_level, model=args.model,
                            crossfit_folds=args.crossfit_folds, bootstrap_n=args.bootstrap, bootstrap_seed=args.seed,
                            validation=args.validation, crossval_folds=args.crossval_folds, crossval_seed=args.seed)
        out = Path(args.output_dir).resolve()
        _check_apart(Path(args.scores_dir).resolve(), out)
        if args.protocol == "sound":
            scores_dir = Path(args.scores_dir)
            if scores_dir.is_dir() and not (scores_dir / "calib.csv").is_file():
                from .pipeline import NO_CALIB
                raise InputError(f"{scores_dir / 'calib.csv'}: score file not found; {NO_CALIB}")
            cv = args.validation == "crossval"   # crossval: test.csv optional, pooled with calib.csv
            sets = read_score_dir(args.scores_dir, ("calib",) if cv else SOUND_REQUIRED,
                                  SOUND_OPTIONAL + (("test",) if cv else ()), disjoint=True)
        else:
            sets = read_score_dir(args.scores_dir)
        _check_output_dir(out)
        with atomic_dir(out) as tmp:
            summary = run_scores(sets, tmp, settings)
    except (ConfigError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t = summary["levels"]["frame"]["test"]
    ci = t.get("ci95", {}).get("cllr") or [None, None]
    ci_txt = f" (95 % person interval {ci[0]:.4f}-{ci[1]:.4f})" if ci[0] is not None else ""
    print(f"run_scores ({args.protocol}): test Cllr {t['cllr']:.4f} bits{ci_txt}, Cllr_min {t['cllr_min']:.4f}, "
          f"EER {100 * t['eer']:.2f}%, AUC {t['auc']:.4f}")
    print(f"outputs written to {out} (summary.json, <pool>_lr.csv, 09_*..14_* figures"
          f"{', system/' if summary['system'].get('sha256') else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
