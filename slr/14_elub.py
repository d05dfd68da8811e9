"""Stage 14: ELUB bounds (standard method), bounded LRs and the NBE plot, frame and video level, for every split. Reads stage 10's outputs
(<output_dir>/10_kde_lr/); writes <output_dir>/14_elub/ (PNG figures, summary.json).
"""
import sys

from common.cli import run_stage
from slr._stage import stage_output
from slr.pipeline import load_stage10, stage14


def main(cfg, args):
    levels = load_stage10(cfg.stage_dir("10_kde_lr", create=False))
    with stage_output(cfg, "14_elub") as out:
        stage14(levels, out)


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__))
