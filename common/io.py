"""File I/O that never leaves half-written outputs: write to a temporary name, then rename."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class InputError(ValueError):
    """Bad input data; the message names the file (and row or column) and what to do."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def replace_dir(src: str | Path, dst: str | Path) -> Path:
    """Move the folder ``src`` onto ``dst`` (same file system): ``dst``'s old content is swapped out
    by renames and only then removed, so ``dst`` is at every moment either complete-old or complete-new
    (but for the instant between two renames)."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)
    return dst


def link_tree(src: str | Path, dst: str | Path, skip=lambda rel: False) -> int:
    """Copy the tree ``src`` into ``dst`` as hard links (a plain copy where linking fails); returns
    the number of files. Files are only ever replaced by rename in this code base, so writing into
    ``dst`` never changes ``src``."""
    src, dst = Path(src), Path(dst)
    n = 0
    for root, _, files in os.walk(src):
        for f in files:
            p = Path(root) / f
            rel = p.relative_to(src)
            if skip(rel):
                continue
            q = dst / rel
            q.parent.mkdir(parents=True, exist_ok=True)
            if q.exists():
                continue
            try:
                os.link(p, q)
            except OSError:
                shutil.copy2(p, q)
            n += 1
    return n


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; it replaces ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())   # mkdtemp makes 0700
    try:
        yield tmp
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read ``chunk`` bytes at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def jsonable(obj: Any) -> Any:
    """The one JSON sanitiser: numpy -> python (floats keep their repr), NaN -> None, +-inf -> "inf" /
    "-inf", Path -> str, dict keys -> str."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


_jsonable = jsonable


def write_json(path: str | Path, data: Any) -> Path:
    """Atomic JSON write; numpy values become plain numbers, NaN becomes null, +-inf "inf"/"-inf"."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(data), indent=2, sort_keys=False) + "\n")
    return Path(path)


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc


def write_csv(path: str | Path, columns: Mapping[str, Sequence]) -> Path:
    """Atomic CSV write from equal-length columns (floats written with full precision)."""
    names = list(columns)
    lengths = {len(columns[n]) for n in names}
    if len(lengths) > 1:
        raise ValueError(f"write_csv({path}): columns have different lengths {lengths}")
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for row in zip(*(columns[n] for n in names)):
            w.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row])
    return Path(path)


def read_csv(path: str | Path, required: Sequence[str] = ()) -> dict[str, list[str]]:
    """Read a CSV with a header into ``{column: [str, ...]}``; missing columns are a clear error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise InputError(f"{path}: the file is empty; expected a header row with {list(required)}")
        rows = list(reader)
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; the header has {header}")
    cols: dict[str, list[str]] = {h: [] for h in header}
    for i, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(f"{path}: row {i} has {len(row)} fields, the header has {len(header)}")
        for h, v in zip(header, row):
            cols[h].append(v)
    return cols


def numeric_column(cols: dict[str, list[str]], name: str, path: str | Path, dtype=float) -> np.ndarray:
    """Column ``name`` as numbers; a non-numeric cell is an error naming the file, row and value."""
    out = np.empty(len(cols[name]), dtype=dtype)
    for i, v in enumerate(cols[name]):
        try:
            out[i] = dtype(float(v)) if dtype is not float else float(v)
        except ValueError:
            raise InputError(f"{path}: row {i + 2}, column '{name}': '{v}' is not a number") from None
    return out
