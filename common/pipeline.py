"""The runner's logic: which stages of a range are up to date, which must run, and their stamps.

A stage that finished successfully gets a stamp file, ``<output_dir>/<stage>/.stage_stamp.json``,
written atomically after the stage's process exits with code 0. It records

- ``config``: the fingerprint (``Config.fingerprint``) of each config section the stage reads;
- ``paths``: a fingerprint of each external file/folder it reads (``Stage.path_keys``);
- ``inputs``: the fingerprint of each upstream stage's output folder as it was when the stage ran;
- ``outputs``: the fingerprint of the stage's own output folder when it finished.

A folder's fingerprint hashes the relative name, size and modification time (ns) of every file
under it (hidden files and ``*.tmp`` excluded), so re-running an upstream stage, or editing or
deleting an output by hand, makes every stage that reads it out of date, while reading the files'
contents is never needed (stage 04's feature dumps can be gigabytes). A stage is up to date when its
stamp exists and every recorded fingerprint still matches; otherwise the decision names the first
reason found. Code changes are not detected: pass ``--force`` after changing a stage's code.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .config import Config
from .io import write_json
from .stages import STAGES, Stage

STAMP = ".stage_stamp.json"


def tree_fingerprint(path: Path | None) -> str:
    """Hash of (relative name, size, mtime_ns) of every visible file under ``path`` (or of the file).

    ``"missing"`` when the path does not exist, ``"none"`` when no path is configured.
    """
    if path is None:
        return "none"
    path = Path(path)
    if not path.exists():
        return "missing"
    h = hashlib.sha256()
    if path.is_file():
        st = path.stat()
        h.update(f"{path.name}|{st.st_size}|{st.st_mtime_ns}".encode())
        return h.hexdigest()[:16]
    entries = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if f.startswith(".") or f.endswith(".tmp"):
                continue
            p = Path(root) / f
            try:
                st = p.stat()
            except FileNotFoundError:      # vanished while walking
                continue
            entries.append(f"{p.relative_to(path).as_posix()}|{st.st_size}|{st.st_mtime_ns}")
    for e in sorted(entries):
        h.update(e.encode() + b"\n")
    return h.hexdigest()[:16]


def is_enabled(stage: Stage, cfg: Config) -> bool:
    return stage.enabled_key is None or bool(cfg.get(stage.enabled_key, False))


def stage_dir(cfg: Config, stage: Stage) -> Path:
    return cfg.stage_dir(stage.name, create=False)


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
    by_number = {s.number: s for s in table}
    inputs = {}
    for n in stage.inputs:
        up = by_number.get(n)
        if up is not None and is_enabled(up, cfg):
            inputs[up.name] = tree_fingerprint(stage_dir(cfg, up))
    return {
        "config": {k: cfg.fingerprint([k]) for k in stage.config_keys},
        "paths": {k: tree_fingerprint(cfg.path(k, None)) for k in stage.path_keys},
        "inputs": inputs,
    }


def clear_previous(cfg: Config, stage: Stage) -> bool:
    """Remove the output folder of a stage that last *succeeded* (it has a stamp) before it re-runs.

    Its outputs are stale by definition, and stages that reuse what they find (stage 01 skips
    videos already cropped, stage 03 resumes from ``last.pt``) must not build on them. A folder
    without a stamp (a failed or interrupted run) is kept, so such stages can resume. Only
    ``<output_dir>/<stage>`` is touched, never data elsewhere. Returns whether it removed anything.
    """
    if read_stamp(cfg, stage) is None:
        return False
    shutil.rmtree(stage_dir(cfg, stage))
    return True


def write_stamp(cfg: Config, stage: Stage, state: dict, seconds: float) -> Path:
    """Record a successful run (``state`` from ``current_state`` taken just before the stage ran)."""
    d = stage_dir(cfg, stage)
    d.mkdir(parents=True, exist_ok=True)
    stamp = {"stage": stage.name, "script": stage.script, **state,
             "outputs": tree_fingerprint(d), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "seconds": round(seconds, 2)}
    return write_json(d / STAMP, stamp)


@dataclass
class Decision:
    stage: Stage
    run: bool
    reason: str


def decide(cfg: Config, stage: Stage, rerun: Iterable[int] = (), force: bool = False,
           table: Sequence[Stage] = STAGES) -> Decision:
    """Whether ``stage`` must run, and why. ``rerun``: stage numbers that run (or ran) before it now."""
    if not is_enabled(stage, cfg):
        return Decision(stage, False, f"not enabled ({stage.enabled_key} is false)")
    if force:
        return Decision(stage, True, "--force")
    by_number = {s.number: s for s in table}
    rerun = set(rerun)
    upstream = [n for n in stage.inputs if n in rerun and n in by_number and is_enabled(by_number[n], cfg)]
    if upstream:
        return Decision(stage, True, f"upstream stage {by_number[upstream[0]].name} runs first")
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


def plan(cfg: Config, first: int, last: int, force: bool = False,
         table: Sequence[Stage] = STAGES) -> tuple[list[Decision], list[str]]:
    """Decisions for the stages ``first..last`` and warnings about stale stages before the range.

    A stage before the range that the range reads from (directly or not) and that would re-run is
    not run, but it is flagged: the stages of the range then read its stale outputs.
    """
    decisions, warnings, rerun = [], [], set()
    by_number = {s.number: s for s in table}
    needed, todo = set(), [s.number for s in table if first <= s.number <= last]
    while todo:                                   # every stage the range reads from, transitively
        for n in by_number[todo.pop()].inputs:
            if n in by_number and n not in needed:
                needed.add(n)
                todo.append(n)
    for stage in table:
        inside = first <= stage.number <= last
        d = decide(cfg, stage, rerun, force and inside, table)
        if inside:
            decisions.append(d)
            if d.run:
                rerun.add(stage.number)
        elif stage.number < first and stage.number in needed and d.run and is_enabled(stage, cfg):
            warnings.append(f"stage {stage.name} (before --from) is out of date: {d.reason}; "
                            f"later stages read its old outputs")
    return decisions, warnings
