"""Stage 14: ELUB bounds (the standard method), bounded LRs and the NBE plot, frame and video level.

Under slr.protocol=sound the bounds are fitted on val and applied to every split; under paper
each split's own bounds are reported beside the paper's fallback (-12, 6.5). Reads stage 10's
outputs (<output_dir>/10_kde_lr/); writes <output_dir>/14_elub/ (elub_*.png, summary.json).
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
