"""Stage 09: score distributions. Violin plot and density per pool and hypothesis (frame and video
level) with n, mean and std. Reads the score CSVs in slr.scores_dir (sound: calib and test, train
and val as diagnostics; paper: train, val, test); writes <output_dir>/09_score_distributions/.
"""
import sys

from common.cli import run_stage
from slr._stage import data_note, read_pool_scores
from slr.pipeline import Settings, stage09


def main(cfg, args, out):
    settings = Settings.from_config(cfg)
    sets = read_pool_scores(cfg, settings)
    stage09(sets, out, settings, data_note(cfg))


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="09"))
