"""Stage 15b: the saved LR system on external data sets it never saw (the validation matrix's
generalisation rows).

Reads ``validation.external`` (a list of {name, root, input, person_regex, max_frames}; root in the
layout stage 01 writes: ``<root>/<real|fake>/frames/<video_id>/*.png``), the trained detector
(``features.checkpoint``) and the LR system casework loads (``15_robustness/system`` when current,
else ``10_kde_lr/system``); nothing is refitted. Writes ``<output_dir>/15b_generalisation/``:
``summary.json`` (per set: items, accepted by the conditions check, outside per condition, Cllr,
Cllr_min, EER, AUC, misleading rates with 95 % person-cluster intervals, frame and video level)
and ``<name>_lr.csv`` per set. Runs only when validation.external names a set. Logic:
evaluation/generalisation.py.
"""
import sys

from common.cli import run_stage
from evaluation.generalisation import run


def main(cfg, args, out):
    s = run(cfg, out)
    for name, b in s["sets"].items():
        f = b["levels"].get("frame")
        txt = (f"Cllr {f['cllr']:.3f} [{f['ci95']['cllr'][0]:.3f}, {f['ci95']['cllr'][1]:.3f}]"
               if f and f["ci95"]["cllr"][0] is not None else f"Cllr {f['cllr']:.3f}" if f else "no figures")
        print(f"  {name}: {b['n_accepted']} of {b['n_items']} frames accepted by the conditions check; {txt}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="15b"))
