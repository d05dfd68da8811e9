"""Stage 11: Tippett plots and rates of misleading evidence, frame and video level, every split.

Standard form: both hypotheses drawn as P(LLR >= x); under slr.protocol=paper also the paper's
form (Hp as P(LLR <= x)). Reads stage 10's outputs (<output_dir>/10_kde_lr/); writes
<output_dir>/11_tippett/ (tippett_*.png, summary.json with P(LLR < 0 | Hp) and P(LLR > 0 | Hd)).
"""
import sys

from common.cli import run_stage
from slr._stage import stage_output
from slr.pipeline import load_stage10, stage11


def main(cfg, args):
    levels = load_stage10(cfg.stage_dir("10_kde_lr", create=False))
    with stage_output(cfg, "11_tippett") as out:
        stage11(levels, out)


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__))
