"""Stage 10: the LR system under slr.protocol (sound | paper).

sound (v2): the LR system (slr/system.py) is fitted on the calib pool only: score model slr.model
(kde | logistic | isotonic), calibration slr.calibration and ELUB bounds on cross-fitted calib LLRs
(slr.crossfit_folds person-grouped folds), then applied to every pool; person-cluster bootstrap
intervals (slr.bootstrap.n, slr.bootstrap.seed). paper: the paper's KDEs (train bandwidths,
re-fitted on each split). Reads slr.scores_dir; writes <output_dir>/10_kde_lr/ (<pool>_lr.csv,
<pool>_video_lr.csv, figures, summary.json and, under sound, the saved LR system in system/).
The system records the calib data's conditions (common.conditions.pool_conditions: image and face
size, JPEG quality, blockiness, frames per video, track length, from stage 01's manifest and the
source frames) for casework to compare questioned items with, and its detector (stage 04's record:
checkpoint SHA-256, input size, normalisation, feature, batch size, dtype) for casework and stage 15
to refuse another. A fused run (slr.score: fusion) stores every member's identity and the fusion
weights instead, and its summary the fusion's choice record (``fusion``) and each member's own LR system,
fitted the same way on its calib scores, evaluated on every pool (``fusion_members``).
slr.validation = crossval (slr/crossval.py): every person of calib (+ test) is validated out of fold
(slr.crossval.folds person-grouped folds); the saved system is fitted on all of them.
"""
import sys

from common.cli import run_stage
from common.conditions import pool_conditions
from common.io import read_json
from slr._stage import centroid, data_note, read_pool_scores, score_dir
from slr.fused_stage import FUSION, member_systems
from slr.interface import system_for
from slr.pipeline import Settings, stage10


def calib_data_conditions(cfg, sets) -> dict | None:
    """Conditions of the calib videos (None without a calib pool), from ``dataset.root``'s stage-01 manifest."""
    calib = sets.get("calib")
    if calib is None or calib.video_ids is None:
        return None
    return pool_conditions(cfg.path("dataset.root"), set(map(str, calib.video_ids)),
                           cfg.path("preprocessing.input"), progress=True)


def detector_record(cfg) -> dict:
    """Stage 04's record of the detector pass behind the scores (training/identity.py); {} for scores
    that came from elsewhere (slr.features_file)."""
    if cfg.get("slr.score") == FUSION:      # every member's identity and the fusion (slr/fused_stage.py)
        return dict(read_json(score_dir(cfg) / "summary.json").get("detector") or {})
    d = cfg.path("slr.features_dir")
    if cfg.get("slr.features_file") is not None or d is None or not (d / "summary.json").is_file():
        return {}
    return dict(read_json(d / "summary.json").get("detector") or {})


def main(cfg, args, out):
    settings = Settings.from_config(cfg)
    sets = read_pool_scores(cfg, settings)
    spec = {"name": settings.score}
    conditions = calib_data_conditions(cfg, system_for(settings).lr_pools(sets))   # crossval: all LR persons
    detector = detector_record(cfg)
    extra = None
    if "fusion" in detector:     # the choice, and each member's own LR system beside the fused one (report)
        extra = {"fusion": detector["fusion"]["choice"],
                 "fusion_members": member_systems(sets, score_dir(cfg), settings)}
    _, summary = stage10(sets, out, settings, score_spec=spec, centroid=centroid(cfg), conditions=conditions,
                         note=data_note(cfg), detector=detector, extra=extra)
    sysb = summary["system"]
    bw = sysb["bandwidth"].get("frame")
    bw_txt = f", frame-level bandwidths: Hp {bw['hp']:.4g}, Hd {bw['hd']:.4g}" if bw else ""
    b = sysb["bounds_log10"].get("frame")
    b_txt = f", bounds [{b[0]:.2f}, {b[1]:.2f}]" if b else ""
    sha = f", system sha256 {sysb['sha256'][:12]}" if sysb.get("sha256") else ""
    print(f"  {settings.protocol} protocol ({sysb['model']}){bw_txt}{b_txt}{sha}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="10"))
