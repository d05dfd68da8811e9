"""Bring your own scores: run stages 09-14 on score CSVs from any system.

    python -m slr.run_scores --scores-dir DIR --output-dir OUT --protocol {sound,paper}

DIR holds ``train.csv``, ``val.csv`` and ``test.csv``, each with at least the columns ``score``
and ``label`` (0 = real = Hp, 1 = fake = Hd); an optional ``video_id`` column adds video-level
results (video score = mean frame score). Any score scale and direction works: the KDEs model
each hypothesis's scores as they are.

OUT receives the figures and summaries of stages 09-14 in ``OUT/<NN_name>/``, per split
``OUT/<split>_lr.csv`` (``score``, ``label``, ``llr`` = the system's final log10 LR, plus the
intermediate ``llr_kde`` and ``llr_calibrated``) and ``OUT/summary.json`` computed on ``llr``.
OUT is written atomically: it appears complete or not at all. An existing OUT is replaced only if
it is empty or an earlier run_scores output (it holds a summary.json with a "protocol").
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
from .pipeline import CALIBRATIONS, PROTOCOLS, Settings, run_scores


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
    p.add_argument("--scores-dir", required=True, help="folder with train.csv, val.csv, test.csv (score,label)")
    p.add_argument("--output-dir", required=True, help="folder for the figures, <split>_lr.csv and summary.json")
    p.add_argument("--protocol", choices=PROTOCOLS, default="sound",
                   help="sound (fit on train, calibrate and bound on val) or paper (the paper's code)")
    p.add_argument("--calibration", choices=CALIBRATIONS, default="none",
                   help="sound protocol only: calibration fitted on val after the KDE (default none)")
    p.add_argument("--seed", type=int, default=1024, help="seed of the bandwidth cross-validation folds (sound)")
    p.add_argument("--no-video-level", action="store_true", help="skip video-level results")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    try:
        settings = Settings(protocol=args.protocol, calibration=args.calibration, seed=args.seed,
                            video_level=not args.no_video_level)
        out = Path(args.output_dir).resolve()
        _check_apart(Path(args.scores_dir).resolve(), out)
        sets = read_score_dir(args.scores_dir)
        _check_output_dir(out)
        with atomic_dir(out) as tmp:
            summary = run_scores(sets, tmp, settings)
    except (ConfigError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t = summary["splits"]["test"]
    print(f"run_scores ({args.protocol}): test Cllr {t['cllr']:.4f} bits, Cllr_min {t['cllr_min']:.4f}, "
          f"EER {100 * t['eer']:.2f}%, AUC {t['auc']:.4f}")
    print(f"outputs written to {out} (summary.json, <split>_lr.csv, 09_*..14_* figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
