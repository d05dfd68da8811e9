"""Stage 10: the LR system under slr.protocol (sound | paper).

sound (v2): the LR system (slr/system.py) is fitted on the calib pool only: score model slr.model
(kde | logistic | isotonic), calibration slr.calibration and ELUB bounds on cross-fitted calib LLRs
(slr.crossfit_folds person-grouped folds), then applied to every pool; person-cluster bootstrap
intervals (slr.bootstrap.n, slr.bootstrap.seed). paper: the paper's KDEs (train bandwidths,
re-fitted on each split). Reads slr.scores_dir; writes <output_dir>/10_kde_lr/ (<pool>_lr.csv,
<pool>_video_lr.csv, figures, summary.json and, under sound, the saved LR system in system/).
The system records the calib data's conditions (common.conditions.pool_conditions: image and face
size, JPEG quality, blockiness, frames per video, track length, from stage 01's manifest and the
source frames) for casework to compare questioned items with.
slr.validation = crossval (slr/crossval.py): every person of calib (+ test) is validated out of fold
(slr.crossval.folds person-grouped folds); the saved system is fitted on all of them.
"""
import sys

from common.cli import run_stage
from common.conditions import pool_conditions
from slr._stage import centroid, data_note, read_pool_scores
from slr.crossval import lr_data
from slr.pipeline import Settings, stage10


def calib_data_conditions(cfg, sets) -> dict | None:
    """Conditions of the calib videos (sound protocol), from ``dataset.root``'s stage-01 manifest."""
    calib = sets.get("calib")
    if calib is None or calib.video_ids is None:
        return None
    return pool_conditions(cfg.path("dataset.root"), set(map(str, calib.video_ids)),
                           cfg.path("preprocessing.input"), progress=True)


def main(cfg, args, out):
    settings = Settings.from_config(cfg)
    sets = read_pool_scores(cfg, settings)
    spec = {"name": settings.score}
    lr_sets = {"calib": lr_data(sets)} if settings.validation == "crossval" else sets   # crossval: all LR persons
    conditions = calib_data_conditions(cfg, lr_sets) if settings.protocol == "sound" else None
    _, summary = stage10(sets, out, settings, score_spec=spec, centroid=centroid(cfg), conditions=conditions,
                         note=data_note(cfg))
    sysb = summary["system"]
    bw = sysb["bandwidth"].get("frame")
    bw_txt = f", frame-level bandwidths: Hp {bw['hp']:.4g}, Hd {bw['hd']:.4g}" if bw else ""
    b = sysb["bounds_log10"].get("frame")
    b_txt = f", bounds [{b[0]:.2f}, {b[1]:.2f}]" if b else ""
    sha = f", system sha256 {sysb['sha256'][:12]}" if sysb.get("sha256") else ""
    print(f"  {settings.protocol} protocol ({sysb['model']}){bw_txt}{b_txt}{sha}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="10"))
