"""Stage 11: Tippett plots and rates of misleading evidence, frame and video level, every split.

Standard form: both hypotheses drawn as P(LLR >= x); under slr.protocol=paper also the paper's
form (Hp as P(LLR <= x)). Reads stage 10's outputs (<output_dir>/10_kde_lr/); writes
<output_dir>/11_tippett/ (tippett_*.png, summary.json with P(LLR < 0 | Hp) and P(LLR > 0 | Hd)).
"""
import sys

from common.cli import run_stage
from common.stages import stage_dir
from slr.pipeline import load_stage10, stage11


def main(cfg, args, out):
    levels = load_stage10(stage_dir(cfg, "10"))
    stage11(levels, out)


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="11"))
