"""Stage 02: write the split file (train/val/test, or train/val/calib/test) of a DeepfakeBench-layout dataset.

Reads ``dataset.root`` (``<root>/<real|fake>/frames/<video_id>/*.png``) and the ``split`` section
(unit person | video | frame; ratios: two values = calib/test (a detector trained elsewhere: every
person for the LR system), three = train/val/test (the paper protocol), four = train/val/calib/test
(the validated LR system); seed; person_map / person_regex). The summary
gives persons, videos and frames per pool and class. Writes ``split.file``
(DeepfakeBench-compatible JSON with a ``meta`` entry), ``<split>_leakage.json`` beside it, and in
``<output_dir>/02_split/``: ``summary.json`` and ``split_counts.png``. A person split that leaks is
refused. ``--dataset-root DIR`` and ``--output FILE`` override ``dataset.root`` and ``split.file``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from common.cli import in_work, run_stage
from common.io import write_json
from common.stages import stage_dir
from preprocessing.splits import (leakage_path, make_split, person_function, pool_summary, read_person_map,
                                  write_split)
from preprocessing.plots import plot_split_counts


def add_args(p):
    p.add_argument("--dataset-root", help="dataset root in the DeepfakeBench layout (overrides dataset.root)")
    p.add_argument("--output", help="split JSON to write (overrides split.file)")


def main(cfg, args, stage):
    root = Path(args.dataset_root) if args.dataset_root else cfg.path("dataset.root")
    out = Path(args.output) if args.output else cfg.path("split.file")
    target = out                                    # where the split file is published
    out = in_work(out, stage_dir(cfg, "02"), stage)  # inside the stage folder: written with the rest
    map_path = cfg.path("split.person_map")
    person_map = read_person_map(map_path) if map_path else None
    regex = cfg.get("split.person_regex")
    split = make_split(root, unit=cfg.get("split.unit"), ratios=cfg.get("split.ratios"),
                       seed=int(cfg.get("split.seed")), dataset_name=cfg.get("dataset.name"),
                       person_map=person_map, person_regex=regex)
    person = person_function(person_map, regex)
    write_split(out, split, person)
    meta = split["meta"]
    per_pool = pool_summary(split, person)
    write_json(stage / "summary.json", {"split_file": str(target), "leakage_file": str(leakage_path(target)),
                                        **{k: meta[k] for k in ("dataset", "unit", "seed", "ratios", "pools", "leaky",
                                                                "person_rule", "counts", "leakage")},
                                        "per_pool": per_pool})
    plot_split_counts(meta, stage / "split_counts.png")
    print(f"split ({meta['unit']}, seed {meta['seed']}{', LEAKY' if meta['leaky'] else ''}), pools "
          f"{', '.join(meta['pools'])}:")
    for pool, v in per_pool.items():
        print(f"  {pool:<5}: " + "; ".join(f"{cls} {v[cls]['persons']} persons / {v[cls]['videos']} videos / "
                                            f"{v[cls]['frames']} frames" for cls in ("real", "fake")))
    print(f"wrote {target}, {leakage_path(target)}, summary.json, split_counts.png")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, extra_args=add_args, stage="02"))
