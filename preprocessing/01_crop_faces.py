"""Stage 01: detect, align and crop the faces of sampled video frames into the DeepfakeBench layout.

Reads every video (or frame folder, or image) under ``preprocessing.input``/<real|fake>/ and writes
``preprocessing.output``/<real|fake>/{frames,landmarks,masks}/<video_id>/<idx>.{png,npy} plus
``manifest.csv`` (one row per sampled frame: status ok | no_face | multiple_faces | unreadable,
face box, detector score). Summary JSON and a status figure go to ``<output_dir>/01_faces/`` (or
to the ``--output`` folder when it is given). An interrupted run resumes where it stopped.

    python preprocessing/01_crop_faces.py --input DIR --output OUT [--shard i/n] [--workers N]
"""
from __future__ import annotations

import sys
from pathlib import Path

from common.cli import run_stage
from common.io import write_json
from preprocessing.crop import options_from_config, parse_shard, run_crop, summary
from preprocessing.plots import plot_crop_status


def add_args(p):
    p.add_argument("--input", help="input root with real/ and fake/ videos or images (overrides preprocessing.input)")
    p.add_argument("--output", help="output dataset root (overrides preprocessing.output)")
    p.add_argument("--shard", help="process only shard i of n (i/n, 0 <= i < n), e.g. a cluster array task")
    p.add_argument("--workers", type=int, help="worker processes (overrides preprocessing.workers)")


def main(cfg, args):
    opts = options_from_config(cfg.section("preprocessing"))
    inp = Path(args.input) if args.input else cfg.path("preprocessing.input")
    out = Path(args.output) if args.output else cfg.path("preprocessing.output", None) or cfg.path("dataset.root")
    shard = parse_shard(args.shard)
    result = run_crop(inp, out, opts, shard=shard, workers=args.workers)
    report = out if args.output else cfg.stage_dir("01_faces")
    suffix = "" if shard == (0, 1) else f"_shard{shard[0]}of{shard[1]}"
    info = summary(result, opts, inp, out, shard)
    write_json(report / f"summary{suffix}.json", info)
    fig = plot_crop_status(info, result.rows, report / f"crop_status{suffix}.png")
    c = info["status_counts"]["all"]
    print(f"01: {info['videos_processed']} videos cropped, {info['videos_resumed_skipped']} already done; "
          f"frames ok {c['ok']}, multiple_faces {c['multiple_faces']}, no_face {c['no_face']}, "
          f"unreadable {c['unreadable']}; landmarks: {info['landmark_points']} points")
    print(f"wrote crops under {out}, {result.manifest}, {report / f'summary{suffix}.json'}, {fig}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, extra_args=add_args))
