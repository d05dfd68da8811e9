"""The runner's logic: which stages of a range are up to date, which must run, and their stamps.

A stage that finished successfully gets a stamp file, ``<output_dir>/<folder>/.stage_stamp.json``,
written atomically after the stage's process exits with code 0 (and so after its work folder has
replaced its folder, see ``common.cli.stage_output``). It records

- ``config``: the fingerprint (``Config.fingerprint``) of each config section the stage reads;
- ``paths``: a content fingerprint of each external file/folder it reads (``Stage.path_keys``);
- ``inputs``: the fingerprint of each upstream stage's output folder as it was when the stage ran;
- ``outputs``: the fingerprint of the stage's own output folder when it finished.

A folder's fingerprint hashes, for every file under it (hidden files and ``*.tmp`` excluded), its
relative name, size, modification time and a SHA-256 of its first and last MiB (``file_fingerprint``;
the whole file when it is at most 2 MiB). So a source replaced by another file of the same name is
seen even if its size and time were kept, while a multi-gigabyte feature dump costs two MiB of
reading. Re-running an upstream stage, or editing or deleting an output by hand, makes every stage
that reads it out of date. A stage is up to date when its stamp exists and every recorded
fingerprint still matches; otherwise the decision names the first reason found. Code changes are
not detected: pass ``--force`` after changing a stage's code.

The runner never deletes a stage's folder: a stage that re-runs writes into its work folder and
replaces its folder only on success, so a failed run leaves every earlier output as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .config import REPO_ROOT, Config
from .io import write_json
from .stages import STAGES, Stage, folder, normalize_id

STAMP = ".stage_stamp.json"
_CHUNK = 1 << 20


def file_fingerprint(path: Path, st: os.stat_result | None = None) -> str:
    """``size|sha256`` of a file of at most 2 MiB (its whole content: a copy or a re-materialised dataset
    with new file times is still up to date); ``size|mtime_ns|sha256(first MiB + last MiB)`` of a larger
    one (the modification time guards the middle that is not hashed)."""
    path = Path(path)
    st = st or path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if st.st_size <= 2 * _CHUNK:
            h.update(fh.read())
            return f"{st.st_size}|{h.hexdigest()[:16]}"
        h.update(fh.read(_CHUNK))
        fh.seek(-_CHUNK, os.SEEK_END)
        h.update(fh.read(_CHUNK))
    return f"{st.st_size}|{st.st_mtime_ns}|{h.hexdigest()[:16]}"


def tree_fingerprint(path: Path | None) -> str:
    """Hash of (relative name, ``file_fingerprint``) of every visible file under ``path`` (or of the file).

    ``"missing"`` when the path does not exist, ``"none"`` when no path is configured.
    """
    if path is None:
        return "none"
    path = Path(path)
    if not path.exists():
        return "missing"
    h = hashlib.sha256()
    if path.is_file():
        h.update(f"{path.name}|{file_fingerprint(path)}".encode())
        return h.hexdigest()[:16]
    entries = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if f.startswith(".") or f.endswith(".tmp"):
                continue
            p = Path(root) / f
            try:
                entries.append(f"{p.relative_to(path).as_posix()}|{file_fingerprint(p)}")
            except FileNotFoundError:      # vanished while walking
                continue
    for e in sorted(entries):
        h.update(e.encode() + b"\n")
    return h.hexdigest()[:16]


# a fused run (slr.score: fusion, slr/fused_stage.py) runs no detector stage: its members did
FUSION_NOT_RUN = ("01", "02", "03a", "03", "04", "04b", "05", "06", "07", "15", "15b")
FUSION_KEYS_08 = ("slr.fusion", "slr.crossfit_folds", "slr.bandwidth.seed")   # stage 08's extra keys when fused


def fused(cfg: Config) -> bool:
    return cfg.get("slr.score") == "fusion"


def _fused_state(cfg: Config, stage: Stage) -> tuple[dict, dict]:
    """A fused run's stage 08 also reads the fusion keys and its members' split and dumps."""
    if stage.id != "08" or not fused(cfg):
        return {}, {}
    paths = {}
    for k, d in enumerate(cfg.get("slr.fusion.members") or []):
        run = Path(str(d)).expanduser()
        run = run if run.is_absolute() else REPO_ROOT / run
        paths[f"slr.fusion.members[{k}]"] = "+".join(tree_fingerprint(run / folder(i)) for i in ("02", "04"))
    paths["slr.fusion.source_map"] = tree_fingerprint(cfg.path("slr.fusion.source_map"))   # its content, not its name
    return {k: cfg.fingerprint([k]) for k in FUSION_KEYS_08}, paths


def is_enabled(stage: Stage, cfg: Config) -> bool:
    if stage.id in FUSION_NOT_RUN and fused(cfg):
        return False
    if stage.enabled_key is None:
        return True
    value = cfg.get(stage.enabled_key, False)
    return bool(value) if stage.enabled_value is True else value == stage.enabled_value


def stage_dir(cfg: Config, stage: Stage) -> Path:
    return Path(cfg.output_dir) / stage.folder


def read_stamp(cfg: Config, stage: Stage) -> dict | None:
    p = stage_dir(cfg, stage) / STAMP
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None                           # a damaged stamp means "not known to be up to date"


def current_state(cfg: Config, stage: Stage, table: Sequence[Stage] = STAGES) -> dict:
    """The fingerprints a stamp would record for ``stage`` right now (outputs excluded)."""
    by_id = {s.id: s for s in table}
    inputs = {}
    for n in stage.inputs:
        up = by_id.get(n)
        if up is not None and is_enabled(up, cfg):
            inputs[up.name] = tree_fingerprint(stage_dir(cfg, up))
    extra_config, extra_paths = _fused_state(cfg, stage)
    return {
        "config": {**{k: cfg.fingerprint([k]) for k in stage.config_keys}, **extra_config},
        "paths": {**{k: tree_fingerprint(cfg.path(k, None)) for k in stage.path_keys}, **extra_paths},
        "inputs": inputs,
    }


def write_stamp(cfg: Config, stage: Stage, state: dict, seconds: float) -> Path:
    """Record a successful run (``state`` from ``current_state`` taken just before the stage ran)."""
    d = stage_dir(cfg, stage)
    d.mkdir(parents=True, exist_ok=True)
    stamp = {"stage": stage.id, "folder": stage.folder, "script": stage.script, **state,
             "outputs": tree_fingerprint(d), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "seconds": round(seconds, 2)}
    return write_json(d / STAMP, stamp)


@dataclass
class Decision:
    stage: Stage
    run: bool
    reason: str


def decide(cfg: Config, stage: Stage, rerun: Iterable[str] = (), force: bool = False,
           table: Sequence[Stage] = STAGES) -> Decision:
    """Whether ``stage`` must run, and why. ``rerun``: ids of the stages that run (or ran) before it now."""
    if not is_enabled(stage, cfg):
        if stage.id in FUSION_NOT_RUN and fused(cfg):
            return Decision(stage, False, "not run in a fused run (slr.score is fusion): its members' runs did")
        want = "false" if stage.enabled_value is True else f"not {stage.enabled_value!r}"
        return Decision(stage, False, f"not enabled ({stage.enabled_key} is {want})")
    if force:
        return Decision(stage, True, "--force")
    by_id = {s.id: s for s in table}
    rerun = set(rerun)
    upstream = [n for n in stage.inputs if n in rerun and n in by_id and is_enabled(by_id[n], cfg)]
    if upstream:
        return Decision(stage, True, f"upstream stage {by_id[upstream[0]].name} runs first")
    stamp = read_stamp(cfg, stage)
    if stamp is None:
        return Decision(stage, True, "no record of a successful run")
    now = current_state(cfg, stage, table)
    for key, fp in now["config"].items():
        if stamp.get("config", {}).get(key) != fp:
            return Decision(stage, True, f"config '{key}' changed")
    for key, fp in now["paths"].items():
        if stamp.get("paths", {}).get(key) != fp:
            return Decision(stage, True, f"files under config '{key}' changed")
    for name, fp in now["inputs"].items():
        if stamp.get("inputs", {}).get(name) != fp:
            return Decision(stage, True, f"outputs of {name} changed")
    if stamp.get("outputs") != tree_fingerprint(stage_dir(cfg, stage)):
        return Decision(stage, True, "its own outputs were changed or removed")
    return Decision(stage, False, f"up to date (config and inputs unchanged since {stamp.get('finished', '?')})")


def position(stage_id: str | int, table: Sequence[Stage] = STAGES) -> int:
    """Index of a stage in the table (``--from``/``--to`` accept ``3``, ``"03"``, ``"3a"``, ``"03a"``)."""
    sid = normalize_id(stage_id)
    for i, s in enumerate(table):
        if s.id == sid:
            return i
    raise KeyError(f"no stage '{stage_id}'; stages: {', '.join(s.id for s in table)}")


def plan(cfg: Config, first: str | int, last: str | int, force: bool = False,
         table: Sequence[Stage] = STAGES) -> tuple[list[Decision], list[str]]:
    """Decisions for the stages ``first..last`` (ids, in table order) and warnings about stale stages
    before the range.

    A stage before the range that the range reads from (directly or not) and that would re-run is
    not run, but it is flagged: the stages of the range then read its stale outputs.
    """
    i0, i1 = position(first, table), position(last, table)
    decisions, warnings, rerun = [], [], set()
    by_id = {s.id: s for s in table}
    inside_ids = {s.id for s in table[i0:i1 + 1]}
    needed, todo = set(), list(inside_ids)
    while todo:                                   # every stage the range reads from, transitively
        for n in by_id[todo.pop()].inputs:
            if n in by_id and n not in needed:
                needed.add(n)
                todo.append(n)
    for i, stage in enumerate(table):
        inside = stage.id in inside_ids
        d = decide(cfg, stage, rerun, force and inside, table)
        if inside:
            decisions.append(d)
            if d.run:
                rerun.add(stage.id)
        elif i < i0 and stage.id in needed and d.run and is_enabled(stage, cfg):
            warnings.append(f"stage {stage.name} (before --from) is out of date: {d.reason}; "
                            f"later stages read its old outputs")
    return decisions, warnings
