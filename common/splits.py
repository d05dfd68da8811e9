"""Reading split files (written by stage 02; see preprocessing/splits.py for how they are made).

Format (DeepfakeBench-compatible, plus a ``meta`` entry):

    {"<dataset>": {"<label_name>": {"<pool>": {"<video_id>": {"label": "<label_name>",
                                                              "frames": ["real/frames/0000/000.png", ...]}}}},
     "meta": {"dataset_root": ..., "unit": "person"|"video"|"frame", "seed": ..., "leaky": bool,
              "pools": ["train", "val", "calib", "test"], "persons": {"<video_id>": "<person>"}, ...}}

Pools: the paper protocol's three (``SPLITS``: train, val, test) or the four of the validated LR
system (``POOLS``: train, val, calib, test; ``split.ratios`` with four values), or only ``calib,
test`` (two values: a detector trained elsewhere). ``meta["pools"]``
lists the pools a file has; a file without it (older files, DeepfakeBench's own) has train/val/test.
``meta["persons"]`` maps every video to its person; a file without it falls back to the UADFV rule
(``NNNN_fake`` -> ``NNNN``, any other id is its own person).

Label names ending in ``_Real`` mean real (label 0), anything else fake (label 1), as in
DeepfakeBench (``UADFV_Real``, ``UADFV_Fake``). Frame paths are relative to the dataset root.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .io import InputError, read_json

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")                  # the paper protocol's pools (unchanged)
POOLS = ("train", "val", "calib", "test")          # the validated LR system's four person-disjoint pools
_UADFV_FAKE = re.compile(r"^(?P<person>.+?)_fake$", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    path: str        # relative to the dataset root
    label: int       # 1 = fake
    video_id: str


def label_of(label_name: str) -> int:
    return 0 if label_name.lower().endswith("real") else 1


def uadfv_person(video_id: str) -> str:
    """The UADFV rule: ``NNNN`` and ``NNNN_fake`` show person ``NNNN`` (a trailing ``_fake`` is dropped)."""
    m = _UADFV_FAKE.match(str(video_id))
    return m.group("person") if m else str(video_id)


def _load(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a split file must be a JSON object")
    return data


def _pools_of(data: dict, path: Path) -> tuple[str, ...]:
    meta = data.get("meta") or {}
    pools = meta.get("pools") if isinstance(meta, dict) else None
    if pools is None:
        present = {p for ds, by_label in data.items() if ds != "meta" and isinstance(by_label, dict)
                   for by_pool in by_label.values() if isinstance(by_pool, dict) for p in by_pool}
        return tuple(p for p in POOLS if p in SPLITS or p in present)
    if not isinstance(pools, list) or not pools or any(p not in POOLS for p in pools):
        raise InputError(f"{path}: meta.pools must be a list drawn from {list(POOLS)}, got {pools!r}; "
                         f"re-run stage 02")
    return tuple(p for p in POOLS if p in pools)


def pools_in(path: str | Path) -> tuple[str, ...]:
    """The pools the split file has, in ``POOLS`` order (``meta["pools"]``; train/val/test without it)."""
    path = Path(path)
    return _pools_of(_load(path), path)


def read_split(path: str | Path, split: str) -> list[Sample]:
    """All samples of one pool (any of ``POOLS``), videos in file order, frames in listed (temporal) order.

    A pool the file does not have is an error saying how to make one.
    """
    path = Path(path)
    if split not in POOLS:
        raise ValueError(f"split must be one of {POOLS}, got {split!r}")
    data = _load(path)
    have = _pools_of(data, path)
    if split not in have:
        raise InputError(f"{path}: the split file has no '{split}' pool (it has {', '.join(have)}); "
                         f"give split.ratios four values (train, val, calib, test) and re-run stage 02")
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


def person_of_video(path: str | Path) -> dict[str, str]:
    """``{video_id: person_id}`` for every video of the split file (``meta["persons"]``).

    A file without ``meta.persons`` (written before pools existed) gets the UADFV rule for every
    video it lists, with a warning.
    """
    path = Path(path)
    data = _load(path)
    meta = data.get("meta") or {}
    persons = meta.get("persons") if isinstance(meta, dict) else None
    if persons is not None:
        if not isinstance(persons, dict):
            raise InputError(f"{path}: meta.persons must be an object {{video_id: person_id}}; re-run stage 02")
        return {str(k): str(v) for k, v in persons.items()}
    log.warning("%s has no meta.persons (written before pools existed); persons follow the UADFV rule "
                "(NNNN_fake -> NNNN): re-run stage 02 to record them", path)
    out = {}
    for dataset, by_label in data.items():
        if dataset == "meta" or not isinstance(by_label, dict):
            continue
        for by_pool in by_label.values():
            for pool_entries in (by_pool or {}).values():
                for vid in (pool_entries or {}):
                    out[str(vid)] = uadfv_person(vid)
    return out


def split_meta(path: str | Path) -> dict:
    return read_json(path).get("meta", {})
