"""Stage 03a (DeepFidelity, before stage 03): face-quality fidelity targets for the training frames.

Reads the split file (``split.file``) and the frames + landmarks under ``dataset.root``; computes
the face quality of every frame of ``fidelity.splits`` (``fidelity.quality_method``), maps it to
fidelity targets (fakes into [0, 0.4], reals into [0.6, 1.0], fitted on train) and writes the cache
``fidelity.cache_file`` (default: in this stage's folder) plus ``<output_dir>/03a_fidelity_targets/``
(``summary.json``, ``quality.png``). An up-to-date cache is reused. Stage 03 reads the targets with
``training.data_mode: fidelity``; 04b fits the fidelity SVR on them.
"""
from __future__ import annotations

import sys

from common.cli import run_stage
from training.fidelity_stages import make_targets


def main(cfg, args, out):
    s = make_targets(cfg, out)
    print(f"03a_fidelity_targets: {s['quality_method']} quality -> fidelity targets in {s['cache_file']}"
          f"{' (reused)' if s['reused_cache'] else ''}; summary.json and quality.png in {s['output_dir']}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="03a"))
