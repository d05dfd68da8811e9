"""Stage 12: DET curves on probit axes, EER and its threshold, frame and video level, every split.

The EER interpolates linearly between exact operating points (ROCCH-EER reported too; the method
is named in the summary); under slr.protocol=paper the paper's EER is reported beside it. Reads
stage 10's outputs (<output_dir>/10_kde_lr/); writes <output_dir>/12_det_eer/ (det_*.png, summary.json).
"""
import sys

from common.cli import run_stage
from common.stages import stage_dir
from slr.pipeline import load_stage10, stage12


def main(cfg, args, out):
    levels = load_stage10(stage_dir(cfg, "10"))
    stage12(levels, out)


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="12"))
