"""Stage 15: robustness of the saved LR system under degraded test images (JPEG, downscale, blur, noise).

Reads: the split file's ``test`` pool and its crops under ``dataset.root`` (and, for downscale, stage
01's source frames through ``<dataset.root>/manifest.csv``), the trained detector
(``features.checkpoint``), the saved LR system ``10_kde_lr/system/``; config section ``robustness``.
Writes ``<output_dir>/15_robustness/``: ``summary.json`` and ``robustness.csv`` (per degradation,
strength and level: Cllr, Cllr_min, Cllr_cal, EER, AUC, misleading rates, strong misleading shares,
95 % person-cluster intervals), ``frame_llrs.csv``, ``cllr_vs_strength.png``, ``tippett_strongest.png``,
``system/`` (the LR system with ``conditions.validated_degradations``) and ``casework_system.json``.
Logic: evaluation/robustness.py; format of the conditions: docs/robustness.md.
"""
import sys

from common.cli import run_stage
from evaluation.robustness import run


def main(cfg, args, out):
    s = run(cfg, out)
    ranges = ", ".join(f"{fam}: {v['strongest'] if v['strongest'] is not None else 'none'}"
                       for fam, v in s["validated_range"].items()) or "no criteria"
    print(f"stage {s['stage']}: {len(s['settings'])} settings x {s['n_frames']} test frames; validated "
          f"strongest settings: {ranges}; system {s['system']['sha256'][:12]} -> {s['system']['dir']}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="15"))
