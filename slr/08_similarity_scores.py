"""Stage 08: scores of every pool. slr.score = cosine_centroid (the paper: cosine similarity to the
centroid of the real train features, saved as centroid.npy) | logit | fake_probability (the
detector's, from stage 04); one score CSV per pool (image_path, person_id, video_id, label, score).

Reads slr.features_dir (stage 04's dumps of every pool) or slr.features_file + slr.split_file (the
paper's .npz divided into the split file's pools); streams the features in batches of
slr.batch_size rows. Person ids come from the dumps' person_id column, else from the split file's
meta.persons. Writes <output_dir>/08_scores/.
slr.score = fusion: the logistic fusion of the slr.fusion.members runs' scores (slr/fused_stage.py).
"""
import sys

from common.cli import run_stage
from common.config import ConfigError
from common.splits import person_of_video
from slr._stage import feature_dumps
from slr.fused_stage import FUSION, stage08_fusion
from slr.scores import SCORE_NAMES, stage08


def stage08_persons(cfg, dumps) -> dict | None:
    """video -> person from slr.split_file, needed when a dump has no person_id column (the paper's .npz)."""
    if all(d.person_ids is not None for d in dumps.values()):
        return None
    split_file = cfg.path("slr.split_file")
    return person_of_video(split_file) if split_file is not None and split_file.is_file() else None


def main(cfg, args, out):
    score = str(cfg.get("slr.score"))
    if score == FUSION:                       # a fused run: the members' dumps (slr/fused_stage.py)
        summary = stage08_fusion(cfg, out)
        print(f"  {summary['score']}")
        return
    if score not in SCORE_NAMES:
        raise ConfigError(f"{cfg.source}: slr.score must be one of {', '.join(SCORE_NAMES)}, got {score!r}")
    dumps = feature_dumps(cfg)
    summary = stage08(dumps, out, batch_size=int(cfg.get("slr.batch_size")), score=score,
                      persons=stage08_persons(cfg, dumps))
    print(f"  score: {summary['score']}")
    print(f"  score AUC = {summary['auc_definition']}")
    for split, s in summary["splits"].items():
        print(f"  {split}: {s['n_hp']} real, {s['n_hd']} fake, {s['n_persons']} persons, score AUC {s['auc']:.4f}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="08"))
