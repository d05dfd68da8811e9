"""Stage 09: score distributions. Violin plot and density per split and hypothesis (frame and video
level) with n, mean and std. Reads the score CSVs in slr.scores_dir; writes <output_dir>/09_score_distributions/.
"""
import sys

from common.cli import run_stage
from slr._stage import score_dir
from slr.io import read_score_dir
from slr.pipeline import Settings, stage09


def main(cfg, args, out):
    settings = Settings.from_config(cfg)
    sets = read_score_dir(score_dir(cfg))
    stage09(sets, out, settings)


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="09"))
