"""The casework command: likelihood ratios for one questioned image or video from a trained run.

    python evidence.py --config CONFIG --input FILE [--output DIR] [--set key=value ...]

For every face found (one result per face; in a video, per face followed across frames): the
aligned crop, the detector's score (cosine similarity to stage 08's centroid), the LR and log10 LR
of stage 10's system (sound protocol: KDEs from train, calibration fitted on val), the value
bounded by the run's ELUB bounds, its verbal equivalent (``evidence.verbal_scale``), and a one-page
HTML summary. Writes ``DIR/{evidence.html, evidence.json, face_N.png, density_N.png}`` (default DIR:
``<evidence.output>/<file name>``).

Exit codes: 0 = at least one face evaluated; 3 = no face found (a statement, no number);
2 = bad config, missing run outputs or unreadable input (the message says which).
"""
from __future__ import annotations

import sys
from pathlib import Path

from common.cli import run_stage
from evaluation.casework import EXIT_NO_FACE, evaluate_file, write_outputs


def add_args(parser):
    parser.add_argument("--input", required=True, help="questioned image or video file")
    parser.add_argument("--output", default=None, help="output folder (default <evidence.output>/<file name>)")


def main(cfg, args):
    path = Path(args.input).expanduser().resolve()
    out = Path(args.output).expanduser().resolve() if args.output else cfg.path("evidence.output") / path.name
    result = evaluate_file(cfg, path)
    write_outputs(cfg, result, out)
    print(result["statement"])
    for f in result["faces"]:
        if f.get("log10_lr_bounded") is None:
            print(f"  face {f['face']}: score {f['score']:.6f}; {f['verbal']}")
        else:
            print(f"  face {f['face']} ({f['level']} level, {len(f['frames'])} frame(s)): score {f['score']:.6f}, "
                  f"LR {f['lr']:.4g} (log10 {f['log10_lr']:+.3f}), bounded log10 LR {f['log10_lr_bounded']:+.3f} "
                  f"within [{f['elub_bounds_log10'][0]:+.2f}, {f['elub_bounds_log10'][1]:+.2f}]: {f['verbal']}")
    print(f"summary: {out / 'evidence.html'}")
    if not result["faces"]:
        raise SystemExit(EXIT_NO_FACE)


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, extra_args=add_args))
