"""Stage 04b (DeepFidelity, after stage 04): fit the fidelity SVR and write fidelity scores per split.

Reads the stage-04 feature dumps (``<output_dir>/04_features/<split>/`` or ``fidelity.features_dir``)
and the fidelity cache (``fidelity.cache_file``, from 03a). Fits an RBF SVR (``fidelity.svr.*``) on
train only and writes ``<output_dir>/04b_fidelity_svr/``: ``svr.npz`` (the fitted SVR as arrays, no
pickle), ``scores/<split>.csv`` (``image_path, video_id, label, score``; score = fidelity, high = real), ``scores_video/<split>.csv``
(video score = mean over frames), ``fidelity_scores.png`` and ``summary.json`` (AUCs). Judge the
fidelity score as evidence with ``python -m slr.run_scores --scores-dir <that>/scores ...`` or run
stages 09-14 with ``--set slr.scores_dir=<that>/scores``.
"""
from __future__ import annotations

import sys

from common.cli import run_stage
from training.fidelity_stages import fit_svr


def main(cfg, args, out):
    s = fit_svr(cfg, out)
    for split, r in s["splits"].items():
        print(f"04b_fidelity_svr: {split}: n={r['n']} AUC frame {r['auc_frame']:.4f}, video {r['auc_video']:.4f}")
    print(f"04b_fidelity_svr: svr.npz, scores/, scores_video/, fidelity_scores.png, summary.json in {s['output_dir']}")
    print(f"judge it as evidence: python -m slr.run_scores --scores-dir {s['output_dir']}/scores "
          f"--output-dir {cfg.output_dir}/fidelity_slr")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="04b"))
