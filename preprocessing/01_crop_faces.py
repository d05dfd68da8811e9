"""Stage 01: detect, align and crop the faces of sampled video frames into the DeepfakeBench layout.

Reads every video (or frame folder, or image) under ``preprocessing.input``/<real|fake>/ and writes
``preprocessing.output``/<real|fake>/{frames,landmarks,masks}/<video_id>/<idx>.{png,npy} plus
``manifest.csv`` (one row per sampled frame: status ok | no_face | multiple_faces | unreadable,
face box, detector score). Summary JSON and a status figure go to ``<output_dir>/01_faces/``.

Outputs and resume: when ``preprocessing.output`` lies inside the stage folder (the demo: it *is*
``01_faces``), the crops are made in the stage's work folder ``<output_dir>/.01_faces.work/`` and
replace the stage folder only when every video is done; videos of the published folder whose source
is unchanged (content fingerprint, see preprocessing/crop.py) are linked into the work folder, not
cropped again, and a failed run's work folder is kept and resumed. A dataset root elsewhere
(``data/UADFV``) is updated video by video, each video's crops replaced only once its new ones are
complete. With ``--output`` or ``--shard`` the crops and the report go to that folder directly
(cluster array tasks share one output); the stage folder is left as it is.

    python preprocessing/01_crop_faces.py --input DIR --output OUT [--shard i/n] [--workers N]
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from common.cli import KEEP_PREVIOUS, in_work, run_stage
from common.config import config_record
from common.io import link_tree, write_json
from common.pipeline import STAMP
from common.stages import stage_dir
from preprocessing.crop import options_from_config, parse_shard, run_crop, settings_match, summary
from preprocessing.plots import plot_crop_status


def add_args(p):
    p.add_argument("--input", help="input root with real/ and fake/ videos or images (overrides preprocessing.input)")
    p.add_argument("--output", help="output dataset root (overrides preprocessing.output); report written there too")
    p.add_argument("--shard", help="process only shard i of n (i/n, 0 <= i < n), e.g. a cluster array task")
    p.add_argument("--workers", type=int, help="worker processes (overrides preprocessing.workers)")


def main(cfg, args, work):
    opts = options_from_config(cfg.section("preprocessing"))
    inp = Path(args.input) if args.input else cfg.path("preprocessing.input")
    shard = parse_shard(args.shard)
    direct = bool(args.output) or shard != (0, 1)
    if direct:                                   # by hand / cluster shards: write where asked
        out = Path(args.output) if args.output else cfg.path("preprocessing.output")
        report = out
    else:
        published = stage_dir(cfg, "01")
        target = cfg.path("preprocessing.output")
        out = in_work(target, published, work)
        report = work
        if (out / ".manifest" / "settings.json").is_file() and not settings_match(out, opts):
            print(f"01: the work folder {work} was started with other settings; starting it over")
            shutil.rmtree(work)
            work.mkdir()
        if out != target and target.is_dir() and not (out / ".manifest" / "settings.json").is_file() \
                and settings_match(target, opts):
            n = link_tree(target, out, skip=lambda rel: rel.name == STAMP)   # unchanged videos are not redone
            print(f"01: reusing the published crops of unchanged videos ({n} files linked)")
    result = run_crop(inp, out, opts, shard=shard, workers=args.workers)
    suffix = "" if shard == (0, 1) else f"_shard{shard[0]}of{shard[1]}"
    info = summary(result, opts, inp, out if direct else cfg.path("preprocessing.output"), shard)
    info["config"] = config_record(cfg)          # which config file (and overrides) made these crops
    write_json(report / f"summary{suffix}.json", info)
    fig = plot_crop_status(info, result.rows, report / f"crop_status{suffix}.png")
    c = info["status_counts"]["all"]
    print(f"01: {info['videos_processed']} videos cropped, {info['videos_resumed_skipped']} already done; "
          f"frames ok {c['ok']}, multiple_faces {c['multiple_faces']}, no_face {c['no_face']}, "
          f"unreadable {c['unreadable']}; landmarks: {info['landmark_points']} points")
    print(f"wrote crops under {info['output']}, manifest.csv, summary{suffix}.json, {Path(fig).name}")
    return KEEP_PREVIOUS if direct else None


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, extra_args=add_args, stage="01"))
