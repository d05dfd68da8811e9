"""Stage 08: similarity scores. Centroid of the real training features (saved as centroid.npy),
cosine similarity of every sample to it, one score CSV per split (image_path, video_id, label, score).

Reads slr.features_dir (stage 04's dumps) or slr.features_file + slr.split_file; streams the
features in batches of slr.batch_size rows. Writes <output_dir>/08_scores/.
"""
import sys

from common.cli import run_stage
from slr._stage import feature_dumps
from slr.pipeline import stage08


def main(cfg, args, out):
    dumps = feature_dumps(cfg)
    summary = stage08(dumps, out, batch_size=int(cfg.get("slr.batch_size", 64)))
    for split, s in summary["splits"].items():
        print(f"  {split}: {s['n_hp']} real, {s['n_hd']} fake, score AUC {s['auc']:.4f}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="08"))
