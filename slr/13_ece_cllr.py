"""Stage 13: empirical cross-entropy (ECE) plots with PAV-calibrated and neutral references, Cllr, Cllr_min, Cllr_cal and AUC, frame and video level, for every split. Reads stage 10's outputs
(<output_dir>/10_kde_lr/); writes <output_dir>/13_ece_cllr/ (PNG figures, summary.json).
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
