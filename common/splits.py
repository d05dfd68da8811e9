"""Reading split files (written by stage 02; see preprocessing/splits.py for how they are made).

Format (DeepfakeBench-compatible, plus a ``meta`` entry):

    {"<dataset>": {"<label_name>": {"train"|"val"|"test": {"<video_id>": {"label": "<label_name>",
                                                                         "frames": ["real/frames/0000/000.png", ...]}}}},
     "meta": {"dataset_root": ..., "unit": "person"|"video"|"frame", "seed": ..., "leaky": bool, ...}}

Label names ending in ``_Real`` mean real (label 0), anything else fake (label 1), as in
DeepfakeBench (``UADFV_Real``, ``UADFV_Fake``). Frame paths are relative to the dataset root.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .io import InputError, read_json

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    path: str        # relative to the dataset root
    label: int       # 1 = fake
    video_id: str


def label_of(label_name: str) -> int:
    return 0 if label_name.lower().endswith("real") else 1


def read_split(path: str | Path, split: str) -> list[Sample]:
    """All samples of one split, videos in file order, frames in listed (temporal) order."""
    path = Path(path)
    data = read_json(path)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    samples: list[Sample] = []
    for dataset, by_label in data.items():
        if dataset == "meta":
            continue
        if not isinstance(by_label, dict):
            raise InputError(f"{path}: entry '{dataset}' is not a mapping of label names")
        for label_name, by_split in by_label.items():
            for video_id, entry in (by_split.get(split) or {}).items():
                frames = entry.get("frames") if isinstance(entry, dict) else None
                if not isinstance(frames, list):
                    raise InputError(f"{path}: {dataset}/{label_name}/{split}/{video_id} has no 'frames' list")
                lab = label_of(entry.get("label", label_name))
                samples.extend(Sample(str(f), lab, str(video_id)) for f in frames)
    return samples


def split_meta(path: str | Path) -> dict:
    return read_json(path).get("meta", {})
