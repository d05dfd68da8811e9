"""The stage table: the one place that declares a stage's identity.

For every numbered stage: its id (a string: ``"00"`` .. ``"16"``, ``"03a"``, ``"04b"``), its output
folder ``<output_dir>/<folder>``, its script, the config sections it reads (``config_keys``, their
values are fingerprinted), the stages whose outputs it reads (``inputs``), config keys naming files or
folders outside the output tree it reads (``path_keys``, content-fingerprinted), when it is enabled,
the title of its section in the report and whether it resumes from a work area (``resumable``).

Code finds a stage's folder with ``stage_dir(cfg, "10")`` (or ``folder("10")`` for the bare name);
config values refer to it as ``${stage:10}``. No other module spells a folder name.

Outputs (see ``common.cli.run_stage``): a stage script writes into a work folder beside its final
folder, ``<output_dir>/.<folder>.work/``, which replaces ``<output_dir>/<folder>/`` only when the
stage succeeds; a failed stage leaves its previous output untouched. A resumable stage (01, 03)
keeps its work folder after a failure, so the next run continues there.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Stage:
    id: str                    # "00" .. "16", "03a", "04b", "15b"
    folder: str                # output folder: <output_dir>/<folder>
    script: str                # relative to the repository root
    config_keys: tuple         # config sections/keys the stage reads (fingerprinted)
    inputs: tuple = ()         # ids of the stages whose outputs it reads
    path_keys: tuple = ()      # config keys of external files/folders it reads (content-fingerprinted)
    enabled_key: str | None = None   # run only when this config key is true (or equals enabled_value)
    enabled_value: Any = True
    title: str = ""            # its section title in the report
    resumable: bool = False    # keeps its work folder after a failure and resumes there

    @property
    def name(self) -> str:     # the folder name is also the stage's display name
        return self.folder


_ALL_BEFORE_REPORT = ("00", "01", "02", "03a", "03", "04", "04b", "05", "06", "07", "08", "09", "10", "11", "12",
                      "13", "14", "15", "15b")

STAGES: tuple[Stage, ...] = (
    Stage("00", "00_demo_videos", "preprocessing/00_make_demo_videos.py", ("seed", "demo"),
          enabled_key="demo.enabled", title="Demo videos (stage 00)"),
    Stage("01", "01_faces", "preprocessing/01_crop_faces.py", ("seed", "dataset", "preprocessing"), ("00",),
          ("preprocessing.input", "preprocessing.landmarks.model_path"), title="Face crops (stage 01)",
          resumable=True),
    Stage("02", "02_split", "preprocessing/02_make_split.py", ("seed", "dataset", "split"), ("01",), ("dataset.root",),
          title="Split (stage 02)"),
    Stage("03a", "03a_fidelity_targets", "training/03a_fidelity_targets.py",
          ("seed", "dataset", "split.file", "fidelity.quality_method", "fidelity.perturbations",
           "fidelity.face_model_path", "fidelity.splits", "fidelity.cache_file", "fidelity.recompute"), ("02",),
          ("dataset.root", "fidelity.face_model_path"), enabled_key="training.data_mode", enabled_value="fidelity",
          title="Fidelity targets (stage 03a)"),
    Stage("03", "03_train", "training/03_train.py", ("seed", "device", "dataset", "model", "training", "split.file"),
          ("02", "03a"), ("dataset.root", "model.pretrained_path"), title="Training curve (stage 03)", resumable=True),
    Stage("04", "04_features", "training/04_dump_features.py",
          ("dataset", "model", "features", "split.file", "training.normalization", "training.data_mode",
           "training.eval_mode", "training.skip_missing", "training.learned"), ("02", "03"),
          ("dataset.root",), title="Feature dumps (stage 04)"),
    Stage("04b", "04b_fidelity_svr", "training/04b_fit_fidelity_svr.py",
          ("seed", "fidelity.svr", "fidelity.features_dir", "fidelity.cache_file", "split.file"), ("03a", "04"),
          enabled_key="training.data_mode", enabled_value="fidelity", title="Fidelity SVR (stage 04b)"),
    Stage("05", "05_feature_check", "evaluation/05_feature_check.py", ("evaluation",), ("04",),
          title="Feature check (stage 05)"),
    Stage("06", "06_tsne", "evaluation/06_tsne.py", ("seed", "evaluation"), ("04",), title="t-SNE (stage 06)"),
    Stage("07", "07_classifier_eval", "evaluation/07_classifier_eval.py", ("evaluation",), ("04",),
          title="Classifier evaluation (stage 07)"),
    Stage("08", "08_scores", "slr/08_similarity_scores.py",
          ("slr.features_dir", "slr.features_file", "slr.split_file", "slr.batch_size", "slr.score"), ("04",),
          ("slr.features_file", "slr.split_file"), title="Scores (stage 08)"),
    Stage("09", "09_score_distributions", "slr/09_score_distributions.py", ("slr",), ("08",), ("slr.scores_dir",),
          title="Score distributions (09)"),
    Stage("10", "10_kde_lr", "slr/10_kde_lr.py", ("seed", "slr"), ("08",), ("slr.scores_dir",),
          title="KDE likelihood ratios (stage 10)"),
    Stage("11", "11_tippett", "slr/11_tippett.py", ("slr",), ("10",), title="Tippett (stage 11)"),
    Stage("12", "12_det_eer", "slr/12_det_eer.py", ("slr",), ("10",), title="DET and EER (stage 12)"),
    Stage("13", "13_ece_cllr", "slr/13_ece_cllr.py", ("slr",), ("10",), title="ECE and Cllr (stage 13)"),
    Stage("14", "14_elub", "slr/14_elub.py", ("slr",), ("10",), title="ELUB bounds (stage 14)"),
    Stage("15", "15_robustness", "evaluation/15_robustness.py",
          ("seed", "device", "robustness", "report.criteria", "slr.bootstrap", "model", "features",
           "training.normalization", "training.data_mode", "training.eval_mode", "split.file", "dataset",
           "preprocessing"), ("01", "02", "03", "04", "08", "10"), ("dataset.root",),
          enabled_key="robustness.enabled", title="Robustness under degraded images (stage 15)", resumable=True),
    Stage("15b", "15b_generalisation", "evaluation/15b_generalisation.py",
          ("seed", "device", "validation", "slr.bootstrap", "model", "features", "training.normalization",
           "training.data_mode", "training.eval_mode", "preprocessing"), ("03", "04", "10", "15"),
          enabled_key="validation.external", title="Generalisation to external data (stage 15b)"),
    Stage("16", "16_report", "evaluation/16_report.py", ("experiment", "report"), _ALL_BEFORE_REPORT,
          title="Report (stage 16)"),
)

BY_ID: dict[str, Stage] = {s.id: s for s in STAGES}
BY_FOLDER: dict[str, Stage] = {s.folder: s for s in STAGES}
BY_NAME = BY_FOLDER            # old name
ORDER: dict[str, int] = {s.id: i for i, s in enumerate(STAGES)}


def normalize_id(value: str | int) -> str:
    """``3`` / ``"3"`` -> ``"03"``; ``"3a"`` -> ``"03a"``; ``"10_kde_lr"`` -> ``"10"``; ids pass through."""
    text = str(value).strip()
    folders = {s.folder: s.id for s in active_table()}
    if text in folders:
        return folders[text]
    head = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    tail = text[len(head):]
    if head.isdigit():
        return f"{int(head):02d}{tail}"
    return text


TABLE_ENV = "PIPELINE_STAGE_TABLE"


def active_table() -> tuple:
    """The stage table in use: ``STAGES``, or the one a runner started with another table (tests)
    handed to its stage processes in the environment variable ``PIPELINE_STAGE_TABLE`` (JSON)."""
    text = os.environ.get(TABLE_ENV)
    if not text:
        return STAGES
    return tuple(Stage(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})
                 for row in json.loads(text))


def table_env(table: tuple) -> dict:
    """Environment for stage processes of a runner using ``table`` (empty for the real table)."""
    if table is STAGES:
        return {}
    return {TABLE_ENV: json.dumps([dataclasses.asdict(s) for s in table])}


def get(stage_id: str | int, table: tuple | None = None) -> Stage:
    """The stage with this id (``KeyError`` naming the known ids if there is none)."""
    sid = normalize_id(stage_id)
    table = active_table() if table is None else table
    for s in table:
        if s.id == sid:
            return s
    raise KeyError(f"no stage '{stage_id}'; stages: {', '.join(s.id for s in table)}")


def folder(stage_id: str | int) -> str:
    """The bare folder name of a stage, e.g. ``folder("10") == "10_kde_lr"``."""
    return get(stage_id).folder


def stage_dir(cfg, stage_id: str | int, create: bool = False) -> Path:
    """``<output_dir>/<folder>`` of the stage (its published outputs)."""
    d = Path(cfg.output_dir) / folder(stage_id)
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d


def work_dir(final: Path) -> Path:
    """The work folder beside a stage's final folder (same file system, so publishing is a rename)."""
    final = Path(final)
    return final.with_name(f".{final.name}.work")


def stage_of_script(script: str | Path) -> Stage | None:
    """The stage whose script this is (by path relative to the repository root), or None."""
    p = Path(script).resolve().as_posix()
    for s in STAGES:
        if p.endswith("/" + s.script):
            return s
    return None
