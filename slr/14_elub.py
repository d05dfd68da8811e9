"""Stage 14: ELUB bounds (the standard method), bounded LRs and the NBE plot, frame and video level.

Under slr.protocol=sound the bounds are fitted on val and applied to every split; under paper
each split's own bounds are reported beside the paper's fallback (-12, 6.5). Reads stage 10's
outputs (<output_dir>/10_kde_lr/); writes <output_dir>/14_elub/ (elub_*.png, summary.json).
"""
import sys

from common.cli import run_stage
from common.stages import stage_dir
from slr.pipeline import load_stage10, stage14


def main(cfg, args, out):
    levels = load_stage10(stage_dir(cfg, "10"))
    stage14(levels, out)


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="14"))
