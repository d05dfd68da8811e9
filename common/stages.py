"""The numbered stages: where each script lives, where it writes, what it depends on.

The runner (run_pipeline.py, logic in common/pipeline.py) uses this table to run a range of stages
in order and to decide which ones are up to date. ``config_keys`` are the config sections a stage
reads (their values are fingerprinted); ``inputs`` the earlier stages whose outputs it reads;
``path_keys`` config keys naming files or folders outside the output tree that the stage reads
(their file listing -- names, sizes, modification times -- is fingerprinted); ``enabled_key`` a
boolean config key that switches the stage on (stage 00 exists only for the embedded demo).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    number: int
    name: str                  # also the output folder: <output_dir>/<name>
    script: str                # relative to the repository root
    config_keys: tuple         # config sections the stage reads
    inputs: tuple = ()         # stage numbers whose outputs it reads
    path_keys: tuple = ()      # config keys of external files/folders it reads
    enabled_key: str | None = None  # run only when this config key is true


STAGES = (
    Stage(0, "00_demo_videos", "preprocessing/00_make_demo_videos.py", ("seed", "demo"),
          enabled_key="demo.enabled"),
    Stage(1, "01_faces", "preprocessing/01_crop_faces.py", ("seed", "dataset", "preprocessing"), (0,),
          ("preprocessing.input", "preprocessing.landmarks.model_path")),
    Stage(2, "02_split", "preprocessing/02_make_split.py", ("seed", "dataset", "split"), (1,), ("dataset.root",)),
    Stage(3, "03_train", "training/03_train.py", ("seed", "dataset", "model", "training", "split.file"), (2,),
          ("dataset.root", "model.pretrained_path")),
    Stage(4, "04_features", "training/04_dump_features.py",
          ("dataset", "model", "features", "split.file", "training.normalization", "training.data_mode",
           "training.eval_mode", "training.skip_missing"), (2, 3),
          ("dataset.root",)),
    Stage(5, "05_feature_check", "evaluation/05_feature_check.py", ("evaluation",), (4,)),
    Stage(6, "06_tsne", "evaluation/06_tsne.py", ("seed", "evaluation"), (4,)),
    Stage(7, "07_classifier_eval", "evaluation/07_classifier_eval.py", ("evaluation",), (4,)),
    Stage(8, "08_scores", "slr/08_similarity_scores.py",
          ("slr.features_dir", "slr.features_file", "slr.split_file", "slr.batch_size", "slr.score"), (4,),
          ("slr.features_file", "slr.split_file")),
    Stage(9, "09_score_distributions", "slr/09_score_distributions.py", ("slr",), (8,), ("slr.scores_dir",)),
    Stage(10, "10_kde_lr", "slr/10_kde_lr.py", ("seed", "slr"), (8,), ("slr.scores_dir",)),
    Stage(11, "11_tippett", "slr/11_tippett.py", ("slr",), (10,)),
    Stage(12, "12_det_eer", "slr/12_det_eer.py", ("slr",), (10,)),
    Stage(13, "13_ece_cllr", "slr/13_ece_cllr.py", ("slr",), (10,)),
    Stage(14, "14_elub", "slr/14_elub.py", ("slr",), (10,)),
    Stage(15, "15_report", "evaluation/15_report.py", ("experiment", "report"), tuple(range(0, 15))),
)

BY_NUMBER = {s.number: s for s in STAGES}
BY_NAME = {s.name: s for s in STAGES}
