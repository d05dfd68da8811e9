"""Stage 04: dump features, fake probabilities and logits of the trained detector, one dump per pool.

Reads ``features.checkpoint`` (default ``<output_dir>/03_train/best.pt``), the split file and the
frames; writes for every pool of ``features.splits`` (null: every pool of the split file)
``<output_dir>/04_features/<pool>/features.npy`` + ``meta.csv`` (image_path, video_id, label,
fake_probability, person_id, logit: the contract read by stages 05-08) and ``04_features/summary.json``.
"""
from __future__ import annotations

import sys

from common.cli import run_stage
from training.dump import STAGE, dump_features


def main(cfg, args, out):
    summary = dump_features(cfg, out=out)
    for split, s in summary["splits"].items():
        print(f"04_features: {split}: {s['n']} rows x {s['dim']} ({s['dtype']}) -> {s['path']}")
    print(f"{STAGE}: summary.json written")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="04"))
