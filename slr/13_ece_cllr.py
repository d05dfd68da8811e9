"""Stage 13: empirical cross-entropy plots, Cllr, Cllr_min, Cllr_cal and AUC, frame and video level.

ECE over log10 prior odds for the LRs, the PAV-calibrated LRs and the neutral LR = 1 (bits; at
prior 0.5 the ECE equals Cllr). Reads stage 10's outputs (<output_dir>/10_kde_lr/); writes
<output_dir>/13_ece_cllr/ (ece_*.png, summary.json).
"""
import sys

from common.cli import run_stage
from slr._stage import stage_output
from slr.pipeline import load_stage10, stage13


def main(cfg, args):
    levels = load_stage10(cfg.stage_dir("10_kde_lr", create=False))
    with stage_output(cfg, "13_ece_cllr") as out:
        stage13(levels, out)


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__))
