"""Feature dumps: the contract between stage 04 (writer) and stages 05-08 (readers).

One dump per split is a directory ``<output_dir>/04_features/<split>/`` holding

- ``features.npy``: (N, D) float32 or float16, memory-mappable, rows in ``meta.csv`` order;
- ``meta.csv``: ``image_path, video_id, label, fake_probability`` and, from stage 04 since pools
  exist, ``logit`` (the detector's log-odds of fake: ``z_fake - z_real`` of its two logits, so
  ``sigmoid(logit) = fake_probability`` for a softmax head) and ``person_id`` (from the split
  file's ``meta.persons``), plus optional extra columns (e.g. ``frame_start, frame_end`` for window
  features). Label 1 = fake, 0 = real. ``logit`` and ``person_id`` are optional when reading
  (older dumps): :attr:`FeatureDump.logit` / :attr:`FeatureDump.person_ids` are then ``None``.

The paper's own ``.npz`` (keys ``features, labels, fake_probability, image_paths``, optional
``video_ids``, ``logit``, ``person_ids``) is read through the same interface. The paper's file has
no logit, and none is reconstructed as ``log(p / (1 - p))``: that would be a value no detector run
gives (casework takes ``z_fake - z_real`` from the logits, so its scores would differ from stage 08's
in the last bits, and a float32 probability saturates at 1 for logits above about 17);
``slr.score: logit`` on such a dump is an error naming the fix (``fake_probability`` ranks the items
the same way).
``FeatureDumpWriter`` streams batches into a pre-allocated memory map inside a temporary directory
that is renamed into place on ``close``, so an interrupted dump never looks complete and memory
stays bounded by one batch.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .io import InputError, numeric_column, read_csv, write_csv

META_COLUMNS = ("image_path", "video_id", "label", "fake_probability")
OPTIONAL_COLUMNS = ("logit", "person_id")     # read into FeatureDump.logit / .person_ids when present


def video_id_from_path(image_path: str) -> str:
    """``fake/frames/0008_fake/049.png`` -> ``0008_fake`` (the frame's parent folder)."""
    return Path(image_path).parent.name


@dataclass
class FeatureDump:
    features: np.ndarray            # (N, D); may be a read-only memory map
    labels: np.ndarray              # (N,) int64, 1 = fake
    fake_probability: np.ndarray    # (N,) float32
    image_paths: np.ndarray         # (N,) str
    video_ids: np.ndarray           # (N,) str
    extra: dict = field(default_factory=dict)
    source: str = ""
    logit: np.ndarray | None = None        # (N,) float64 log-odds of fake, None when the dump has none
    person_ids: np.ndarray | None = None   # (N,) str, None when the dump has none

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def dim(self) -> int:
        return int(np.prod(self.features.shape[1:]))

    def subset(self, index: np.ndarray) -> "FeatureDump":
        """Rows ``index`` (loads those feature rows into memory)."""
        return FeatureDump(np.asarray(self.features[index]), self.labels[index], self.fake_probability[index],
                           self.image_paths[index], self.video_ids[index],
                           {k: np.asarray(v)[index] for k, v in self.extra.items()}, self.source,
                           None if self.logit is None else self.logit[index],
                           None if self.person_ids is None else self.person_ids[index])


def read_feature_dump(path: str | Path, mmap: bool = True) -> FeatureDump:
    """Read a dump directory (``features.npy`` + ``meta.csv``) or a paper-style ``.npz``."""
    path = Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise InputError(f"{path}: feature file not found")
        d = np.load(path, allow_pickle=False)
        missing = [k for k in ("features", "labels", "image_paths") if k not in d]
        if missing:
            raise InputError(f"{path}: missing array(s) {missing}; expected features, labels, image_paths")
        paths = d["image_paths"].astype(str)
        vids = d["video_ids"].astype(str) if "video_ids" in d else np.array([video_id_from_path(p) for p in paths])
        prob = d["fake_probability"].astype(np.float32) if "fake_probability" in d else np.full(len(paths), np.nan, np.float32)
        logit = d["logit"].astype(np.float64) if "logit" in d else None
        persons = d["person_ids"].astype(str) if "person_ids" in d else None
        dump = FeatureDump(d["features"], d["labels"].astype(np.int64), prob, paths, vids, source=str(path),
                           logit=logit, person_ids=persons)
    else:
        fpath, mpath = path / "features.npy", path / "meta.csv"
        if not fpath.is_file() or not mpath.is_file():
            raise InputError(f"{path}: not a feature dump (needs features.npy and meta.csv); run stage 04 first")
        feats = np.load(fpath, mmap_mode="r" if mmap else None)
        cols = read_csv(mpath, required=META_COLUMNS)
        extra = {k: np.asarray(v) for k, v in cols.items() if k not in META_COLUMNS + OPTIONAL_COLUMNS}
        logit = numeric_column(cols, "logit", mpath).astype(np.float64) if "logit" in cols else None
        persons = np.asarray(cols["person_id"], dtype=str) if "person_id" in cols else None
        if persons is not None and (persons == "").any():
            raise InputError(f"{mpath}: row {int(np.argmax(persons == '')) + 2} has an empty person_id; "
                             f"re-run stage 04")
        dump = FeatureDump(feats, numeric_column(cols, "label", mpath, int).astype(np.int64),
                           numeric_column(cols, "fake_probability", mpath).astype(np.float32),
                           np.asarray(cols["image_path"], dtype=str), np.asarray(cols["video_id"], dtype=str),
                           extra, source=str(path), logit=logit, person_ids=persons)
    validate_dump(dump)
    return dump


def validate_dump(dump: FeatureDump) -> None:
    n = len(dump.labels)
    if dump.features.ndim < 2 or dump.features.shape[0] != n:
        raise InputError(f"{dump.source}: features have shape {dump.features.shape} but there are {n} labels")
    for name in ("fake_probability", "image_paths", "video_ids", "logit", "person_ids"):
        if getattr(dump, name) is not None and len(getattr(dump, name)) != n:
            raise InputError(f"{dump.source}: '{name}' has {len(getattr(dump, name))} rows, labels have {n}")
    bad = ~np.isin(dump.labels, (0, 1))
    if bad.any():
        raise InputError(f"{dump.source}: labels must be 0 (real) or 1 (fake); row {int(np.argmax(bad))} "
                         f"has {dump.labels[bad][0]}")


class FeatureDumpWriter:
    """Stream batches of features into ``<path>/`` (see module docstring). Use as a context manager."""

    def __init__(self, path: str | Path, n_rows: int, dtype: str = "float32"):
        if dtype not in ("float32", "float16"):
            raise ValueError(f"feature dtype must be float32 or float16, got {dtype!r}")
        self.path = Path(path)
        self.n_rows = int(n_rows)
        self.dtype = np.dtype(dtype)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
        os.chmod(self.tmp, 0o755)
        self.features: np.memmap | None = None
        self.meta: dict[str, list] = {c: [] for c in META_COLUMNS}
        self.row = 0

    def write(self, features: np.ndarray, image_paths: Sequence[str], video_ids: Sequence[str],
              labels: Sequence[int], fake_probability: Sequence[float], logit: Sequence[float] | None = None,
              person_ids: Sequence[str] | None = None, **extra: Sequence) -> None:
        """One batch. ``logit`` and ``person_ids`` become the ``logit`` and ``person_id`` columns."""
        if logit is not None:
            extra = {"logit": logit, **extra}
        if person_ids is not None:
            extra = {"person_id": person_ids, **extra}
        features = np.asarray(features).reshape(len(features), -1)
        b = len(features)
        if self.features is None:
            self.features = np.lib.format.open_memmap(self.tmp / "features.npy", mode="w+", dtype=self.dtype,
                                                      shape=(self.n_rows, features.shape[1]))
        if features.shape[1] != self.features.shape[1]:
            raise ValueError(f"feature size changed from {self.features.shape[1]} to {features.shape[1]}")
        if self.row + b > self.n_rows:
            raise ValueError(f"more rows than the {self.n_rows} announced")
        self.features[self.row:self.row + b] = features.astype(self.dtype)
        self.row += b
        for name, values in (("image_path", image_paths), ("video_id", video_ids), ("label", labels),
                             ("fake_probability", fake_probability)):
            self.meta[name].extend(list(values))
        for name, values in extra.items():
            self.meta.setdefault(name, []).extend(list(values))

    def close(self) -> Path:
        if self.row != self.n_rows:
            raise ValueError(f"{self.path}: {self.row} rows written, {self.n_rows} announced")
        if self.features is None:
            raise ValueError(f"{self.path}: no rows were written")
        self.features.flush()
        del self.features
        self.meta["label"] = [int(v) for v in self.meta["label"]]
        self.meta["fake_probability"] = [float(v) for v in self.meta["fake_probability"]]
        if "logit" in self.meta:
            self.meta["logit"] = [float(v) for v in self.meta["logit"]]
        write_csv(self.tmp / "meta.csv", self.meta)
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self.features = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "FeatureDumpWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
