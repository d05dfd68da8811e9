"""Stage 13: empirical cross-entropy plots, Cllr, Cllr_min, Cllr_cal and AUC, frame and video level.

ECE over log10 prior odds for the LRs, the PAV-calibrated LRs and the neutral LR = 1 (bits; at
prior 0.5 the ECE equals Cllr). Reads stage 10's outputs (<output_dir>/10_kde_lr/); writes
<output_dir>/13_ece_cllr/ (ece_*.png, summary.json).
"""
import sys

from common.cli import run_stage
from common.stages import stage_dir
from slr.pipeline import load_stage10, stage13


def main(cfg, args, out):
    levels = load_stage10(stage_dir(cfg, "10"))
    stage13(levels, out)


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="13"))
