"""Making split files (stage 02): train/val/(calib/)test over a DeepfakeBench-layout dataset root.

Pools: ``split.ratios`` with three values (train, val, test) gives the paper protocol's three
pools exactly as before; four values (train, val, calib, test) give the four pools of the validated
LR system (docs/preprocessing.md): ``train`` and ``val`` for the detector, ``calib`` for fitting the
LR system, ``test`` for its validation figures only.

The unit of splitting decides what may be shared between splits:

- ``person`` (default, sound): every video of one person goes to one split. For UADFV the fake
  ``NNNN_fake`` is made from the real ``NNNN``, so both belong to person ``NNNN``. Other datasets
  name persons with a mapping file (``video_id -> person``) or a regular expression.
- ``video``: each video goes to one split (stratified by label); persons may be shared.
- ``frame``: frames are shuffled individually (stratified by label), the paper's leaky choice;
  kept only to reproduce its numbers and marked ``leaky`` in the output.

The output is the split JSON read by :func:`common.splits.read_split` (format in its docstring),
with a ``meta`` entry holding the seed, unit, ratios, ``pools``, ``persons`` (video -> person),
counts and a leakage summary; the full leakage report (which persons, videos and frames any two
pools share) is written next to it.
A ``person`` split that leaks is refused. Frame paths are relative to the dataset root, in
temporal order. The same inputs and seed give a byte-identical file.
"""
from __future__ import annotations

import csv
import logging
import re
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from common.io import InputError, read_json, write_json
from common.splits import POOLS, SPLITS, label_of, uadfv_person

log = logging.getLogger(__name__)

UNITS = ("person", "video", "frame")
LABEL_DIRS = ("real", "fake")          # label 0, label 1
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class LeakageError(InputError):
    """A split that must be person-disjoint shares a person between splits."""


# ------------------------------------------------------------------------------------------ persons
def person_of(video_id: str, mapping: Mapping[str, str] | None = None, regex: str | re.Pattern | None = None) -> str:
    """The person shown in ``video_id``.

    Order of rules: ``mapping`` (video_id -> person) if given; else ``regex`` if given (the named
    group ``person``, else group 1, else the whole match, searched from the start of the id); else
    the UADFV rule: ``NNNN`` and ``NNNN_fake`` -> ``NNNN`` (a trailing ``_fake`` is dropped).
    """
    video_id = str(video_id)
    if mapping is not None:
        if video_id not in mapping:
            raise InputError(f"person mapping has no entry for video '{video_id}'; add a row "
                             f"'{video_id},<person>' to the file named by split.person_map")
        return str(mapping[video_id])
    if regex is not None:
        pat = re.compile(regex) if isinstance(regex, str) else regex
        m = pat.match(video_id)
        if not m:
            raise InputError(f"split.person_regex '{pat.pattern}' does not match video '{video_id}'; "
                             "fix the regex (it is matched from the start of the video id)")
        if "person" in pat.groupindex:
            return m.group("person")
        return m.group(1) if pat.groups else m.group(0)
    return uadfv_person(video_id)


def read_person_map(path: str | Path) -> dict[str, str]:
    """A person mapping file: JSON ``{video_id: person}`` or CSV with columns ``video_id,person``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: person mapping file (split.person_map) not found")
    if path.suffix.lower() == ".json":
        data = read_json(path)
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object {{video_id: person}}")
        return {str(k): str(v) for k, v in data.items()}
    out: dict[str, str] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"video_id", "person"} <= {f.strip() for f in reader.fieldnames}:
            raise InputError(f"{path}: expected a CSV header with columns 'video_id,person', got {reader.fieldnames}")
        for i, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if not row["video_id"] or not row["person"]:
                raise InputError(f"{path}: row {i} has an empty video_id or person")
            out[row["video_id"]] = row["person"]
    return out


def person_function(mapping: Mapping[str, str] | None = None, regex: str | None = None) -> Callable[[str], str]:
    pat = re.compile(regex) if regex else None
    return lambda vid: person_of(vid, mapping, pat)


# ------------------------------------------------------------------------------------------ scanning
def _frame_key(p: Path):
    """Temporal order: numeric frame index when the stem is a number, else the name."""
    return (0, int(p.stem), p.name) if p.stem.isdigit() else (1, 0, p.name)


def scan_dataset(dataset_root: str | Path) -> list[dict]:
    """Videos under ``<root>/<real|fake>/frames/<video_id>/``: ``[{video_id, label, frames}]``.

    ``frames`` are paths relative to ``dataset_root`` with ``/`` separators, in temporal order.
    Videos are sorted by (label, video_id). Empty video folders are skipped with a warning.
    """
    root = Path(dataset_root)
    if not root.is_dir():
        raise InputError(f"dataset root '{root}' does not exist (config key dataset.root or --dataset-root)")
    videos = []
    for label, name in enumerate(LABEL_DIRS):
        fdir = root / name / "frames"
        if not fdir.is_dir():
            continue
        for vdir in sorted(p for p in fdir.iterdir() if p.is_dir()):
            frames = sorted((f for f in vdir.iterdir() if f.suffix.lower() in IMAGE_EXTS and f.is_file()),
                            key=_frame_key)
            if not frames:
                log.warning("%s: no frame images, video skipped", vdir)
                continue
            videos.append({"video_id": vdir.name, "label": label,
                           "frames": [f.relative_to(root).as_posix() for f in frames]})
    if not videos:
        raise InputError(f"dataset root '{root}' has no frames: expected <root>/real/frames/<video_id>/*.png "
                         "and/or <root>/fake/frames/<video_id>/*.png (run stage 01 first)")
    ids = defaultdict(list)
    for v in videos:
        ids[v["video_id"]].append(LABEL_DIRS[v["label"]])
    dup = {k: v for k, v in ids.items() if len(v) > 1}
    if dup:
        raise InputError(f"dataset root '{root}': video id(s) present under both real and fake: "
                         f"{sorted(dup)[:5]}; video ids must be unique")
    return videos


# ------------------------------------------------------------------------------------------ allocation
def split_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """Integer sizes summing to ``n`` in proportion to ``ratios`` (largest remainder).

    Ties in the remainder go to the earlier split. When n >= number of non-zero ratios, every split
    with a non-zero ratio gets at least one item (taken from the largest split).
    """
    r = np.asarray(ratios, dtype=float)
    exact = n * r / r.sum()
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(r)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - counts.sum()]:
        counts[i] += 1
    if n >= int((r > 0).sum()):
        for i in range(len(r)):
            if r[i] > 0 and counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] += 1
    return [int(c) for c in counts]


LR_ONLY = ("calib", "test")   # two ratios: no detector-training pools (a detector trained elsewhere)


def pools_for_ratios(ratios: Sequence) -> tuple[str, ...]:
    """Two ratios: calib/test (every person for the LR system); three: the paper's train/val/test;
    four: train/val/calib/test."""
    return {2: LR_ONLY, 3: SPLITS}.get(len(ratios), POOLS)


def _check_ratios(ratios) -> tuple[float, ...]:
    what = ("two (calib, test: a detector trained elsewhere, every person for the LR system), three (train, val, "
            "test: the paper protocol) or four (train, val, calib, test: the validated LR system) non-negative "
            "numbers with a positive sum")
    try:
        r = tuple(float(x) for x in ratios)
    except (TypeError, ValueError):
        raise InputError(f"split.ratios must be {what}, got {ratios!r}") from None
    if len(r) not in (2, 3, 4) or any(not np.isfinite(x) or x < 0 for x in r) or sum(r) <= 0:
        raise InputError(f"split.ratios must be {what}, got {list(ratios)!r}")
    s = sum(r)
    return tuple(x / s for x in r)


def _allocate(items: list, ratios, rng: np.random.Generator) -> list[list]:
    """Shuffle ``items`` (already in a canonical order) and cut them into the pools (one part per ratio)."""
    perm = rng.permutation(len(items))
    counts = split_counts(len(items), ratios)
    out, start = [], 0
    for c in counts:
        out.append([items[i] for i in perm[start:start + c]])
        start += c
    return out


# ------------------------------------------------------------------------------------------ split
def make_split(dataset_root: str | Path, unit: str = "person", ratios: Sequence[float] = (0.7, 0.15, 0.15),
               seed: int = 1024, dataset_name: str | None = None, person_map: Mapping[str, str] | None = None,
               person_regex: str | None = None) -> dict:
    """The split JSON content for the dataset under ``dataset_root`` (see module docstring).

    ``unit``: person | video | frame. ``ratios``: (train, val, test) or (train, val, calib, test),
    normalised to sum 1; for ``person`` they apply to persons, for ``video`` to videos of each
    label, for ``frame`` to frames of each label.
    ``seed`` fixes the shuffle. Label names are ``<dataset>_Real`` / ``<dataset>_Fake``
    (label 1 = fake). Raises :class:`LeakageError` if a ``person`` split shares a person.
    """
    if unit not in UNITS:
        raise InputError(f"split.unit must be one of {UNITS}, got {unit!r}")
    ratios = _check_ratios(ratios)
    pools = pools_for_ratios(ratios)
    root = Path(dataset_root)
    name = dataset_name or root.resolve().name
    videos = scan_dataset(root)
    person = person_function(person_map, person_regex)
    rng = np.random.default_rng(int(seed))

    # assignment: split name -> list of (video, frames)
    chosen: dict[str, list[tuple[dict, list[str]]]] = {s: [] for s in pools}
    if unit == "person":
        by_person: dict[str, list[dict]] = defaultdict(list)
        for v in videos:
            by_person[person(v["video_id"])].append(v)
        parts = _allocate(sorted(by_person), ratios, rng)
        for s, persons in zip(pools, parts):
            for p in persons:
                chosen[s].extend((v, v["frames"]) for v in by_person[p])
    elif unit == "video":
        for label in (0, 1):
            vids = [v for v in videos if v["label"] == label]
            for s, part in zip(pools, _allocate(vids, ratios, rng)):
                chosen[s].extend((v, v["frames"]) for v in part)
    else:  # frame: the paper's leaky split
        for label in (0, 1):
            frames = [(v, f) for v in videos if v["label"] == label for f in v["frames"]]
            for s, part in zip(pools, _allocate(frames, ratios, rng)):
                keep: dict[str, tuple[dict, set]] = {}
                for v, f in part:
                    keep.setdefault(v["video_id"], (v, set()))[1].add(f)
                chosen[s].extend((v, [f for f in v["frames"] if f in fs]) for v, fs in keep.values())

    label_names = (f"{name}_Real", f"{name}_Fake")
    body: dict = {ln: {s: {} for s in pools} for ln in label_names}
    for s in pools:
        for v, frames in sorted(chosen[s], key=lambda t: (t[0]["label"], t[0]["video_id"])):
            ln = label_names[v["label"]]
            body[ln][s][v["video_id"]] = {"label": ln, "frames": list(frames)}

    split = {name: body}
    report = leakage_report(split, person)
    counts = split_summary(split, person)
    split["meta"] = {
        "dataset": name,
        "dataset_root": str(root.resolve()),
        "unit": unit,
        "seed": int(seed),
        "ratios": list(ratios),
        "leaky": unit == "frame" or report["n_persons_shared"] > 0,
        "person_rule": ("mapping" if person_map is not None else
                        f"regex {person_regex}" if person_regex else "uadfv (NNNN_fake -> NNNN)"),
        "counts": counts,
        "leakage": {k: v for k, v in report.items() if k.startswith("n_")},
        "pools": list(pools),
        "persons": {v["video_id"]: person(v["video_id"]) for v in sorted(videos, key=lambda v: v["video_id"])},
    }
    if unit == "frame":
        split["meta"]["warning"] = ("frame-level split: frames of one video (and one person) are in several "
                                    "splits; results on it are optimistic (the paper's leaky protocol)")
    check_person_disjoint(split, report)
    return split


def split_pools(split: dict) -> tuple[str, ...]:
    """The pools of a split dict: ``meta["pools"]``, else train/val/test plus any other pool in the body."""
    pools = (split.get("meta") or {}).get("pools")
    if pools:
        return tuple(p for p in POOLS if p in pools)
    present = {p for ds, by_label in split.items() if ds != "meta" for by_pool in by_label.values() for p in by_pool}
    return tuple(p for p in POOLS if p in SPLITS or p in present)


def _entries(split: dict):
    """(pool, label, video_id, frames) for every entry of a split dict."""
    pools = split_pools(split)
    for dataset, by_label in split.items():
        if dataset == "meta":
            continue
        for label_name, by_split in by_label.items():
            for s in pools:
                for vid, entry in (by_split.get(s) or {}).items():
                    yield s, label_of(entry.get("label", label_name)), vid, entry["frames"]


def leakage_report(split: dict, person: Callable[[str], str] | None = None) -> dict:
    """Persons, videos and frames shared between each pair of pools, computed from the split itself.

    Returns ``{"pairs": {"train/val": {"persons": [...], "videos": [...], "frames": [...]}, ...},
    "n_persons_shared", "n_videos_shared", "n_frames_shared"}`` (counts of distinct items that occur
    in more than one pool). Every pair of the split's pools is covered (3 pairs for train/val/test,
    6 for train/val/calib/test).
    """
    person = person or person_of
    pools = split_pools(split)
    sets = {s: {"persons": set(), "videos": set(), "frames": set()} for s in pools}
    for s, _, vid, frames in _entries(split):
        sets[s]["persons"].add(person(vid))
        sets[s]["videos"].add(vid)
        sets[s]["frames"].update(frames)
    pairs, shared = {}, {"persons": set(), "videos": set(), "frames": set()}
    for a, b in combinations(pools, 2):
        entry = {}
        for kind in ("persons", "videos", "frames"):
            common = sorted(sets[a][kind] & sets[b][kind])
            entry[kind] = common
            shared[kind].update(common)
        pairs[f"{a}/{b}"] = entry
    return {"pairs": pairs, **{f"n_{k}_shared": len(v) for k, v in shared.items()}}


def split_summary(split: dict, person: Callable[[str], str] | None = None) -> dict:
    """Per pool: persons, videos and frames, real and fake."""
    person = person or person_of
    out = {}
    for s in split_pools(split):
        rows = [(lab, vid, frames) for sp, lab, vid, frames in _entries(split) if sp == s]
        out[s] = {
            "persons": len({person(v) for _, v, _ in rows}),
            "videos_real": sum(1 for lab, _, _ in rows if lab == 0),
            "videos_fake": sum(1 for lab, _, _ in rows if lab == 1),
            "frames_real": sum(len(f) for lab, _, f in rows if lab == 0),
            "frames_fake": sum(len(f) for lab, _, f in rows if lab == 1),
        }
    return out


def pool_summary(split: dict, person: Callable[[str], str] | None = None) -> dict:
    """Per pool and class: ``{pool: {"real": {persons, videos, frames}, "fake": {...}, "all": {...}}}``."""
    person = person or person_of
    out = {}
    for s in split_pools(split):
        rows = [(lab, vid, frames) for sp, lab, vid, frames in _entries(split) if sp == s]
        entry = {}
        for name, keep in (("real", (0,)), ("fake", (1,)), ("all", (0, 1))):
            sel = [(v, f) for lab, v, f in rows if lab in keep]
            entry[name] = {"persons": len({person(v) for v, _ in sel}), "videos": len({v for v, _ in sel}),
                           "frames": sum(len(f) for _, f in sel)}
        out[s] = entry
    return out


def check_person_disjoint(split: dict, report: dict | None = None) -> None:
    """Refuse a ``person`` split in which any person appears in two splits."""
    meta = split.get("meta", {})
    if meta.get("unit") != "person":
        return
    report = report or leakage_report(split)
    if report["n_persons_shared"]:
        shared = sorted({p for e in report["pairs"].values() for p in e["persons"]})
        raise LeakageError(f"person split refused: {len(shared)} person(s) appear in more than one split "
                           f"({shared[:10]}); check split.person_map / split.person_regex")


def leakage_path(split_path: str | Path) -> Path:
    """Where the leakage report of ``split_path`` goes: ``<stem>_leakage.json`` beside it."""
    p = Path(split_path)
    return p.with_name(f"{p.stem}_leakage.json")


def write_split(path: str | Path, split: dict, person: Callable[[str], str] | None = None) -> Path:
    """Write ``split`` to ``path`` (atomic) and its leakage report beside it; returns ``path``.

    Refuses (LeakageError, nothing written) a ``person`` split that shares a person.
    """
    report = leakage_report(split, person)
    check_person_disjoint(split, report)
    meta = split.get("meta", {})
    write_json(leakage_path(path), {"split_file": Path(path).name, "unit": meta.get("unit"),
                                    "seed": meta.get("seed"), "leaky": meta.get("leaky"), **report})
    write_json(path, split)
    return Path(path)


def load_split(path: str | Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a split file must be a JSON object")
    return data

