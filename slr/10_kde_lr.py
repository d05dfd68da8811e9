"""Stage 10: KDE likelihood ratios under slr.protocol (sound | paper). Gaussian KDE per hypothesis,
bandwidths from the training scores, log10 LR per score; under sound also the optional calibration
(slr.calibration) and the ELUB bounds fitted on val. Reads slr.scores_dir; writes
<output_dir>/10_kde_lr/ (<split>_lr.csv, <split>_video_lr.csv, bandwidth/density/LLR figures, summary.json).
"""
import sys

from common.cli import run_stage
from slr._stage import score_dir
from slr.io import read_score_dir
from slr.pipeline import Settings, stage10


def main(cfg, args, out):
    settings = Settings.from_config(cfg)
    sets = read_score_dir(score_dir(cfg))
    _, summary = stage10(sets, out, settings)
    bw = summary["bandwidth"]
    print(f"  {settings.protocol} protocol, frame-level bandwidths: Hp {bw['hp']:.4g}, Hd {bw['hd']:.4g}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="10"))
