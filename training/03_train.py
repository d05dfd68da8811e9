"""Stage 03: train the detector named in the config on the split file's train split.

Reads the split file (``split.file``) and the frames under ``dataset.root``; selects the best
epoch on the ``val`` split by ``training.select_metric`` (never on test). Writes to
``<output_dir>/03_train/`` (through its work folder ``.03_train.work``, kept after a failure):
``last.pt`` (each epoch; resumed automatically unless ``--set training.resume=false``), ``best.pt``, ``log.csv``, ``training_curves.png`` and
``summary.json``. ``training.mode: external | probe`` trains nothing / fits a logistic head on the frozen
published backbone instead (training/probe.py), writing best.pt and summary.json. Multi-GPU: ``torchrun --nproc_per_node N training/03_train.py --config ...``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from common.cli import run_stage
from training.trainer import STAGE, train


def main(cfg, args, out):
    if cfg.get("training.mode") != "train":      # a published detector as it is, or a linear probe on it
        from training.probe import fit_without_sgd
        s = fit_without_sgd(cfg, out=out)
        fit = f"probe C={s['probe']['C']:g}, CV AUC {s['cv_auc']:.4f}; " if "probe" in s else "no training; "
        print(f"{STAGE}: {s['mode']} detector {s['model']} ({Path(s['identity']['weights']).name}, sha256 "
              f"{s['identity']['weights_sha256'][:12]}): {fit}best.pt and summary.json written")
        return
    summary = train(cfg, out=out)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{STAGE}: best {summary['select_metric']} = {summary['best_value']:.4f} at epoch "
              f"{summary['best_epoch']}; checkpoints, log.csv, training_curves.png, summary.json written")
        if summary.get("detector_learned", {}).get("learned") is False:
            print(f"{STAGE}: WARNING: {summary['detector_learned']['flag']} ({summary['detector_learned']['rule']})")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="03"))
