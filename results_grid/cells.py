"""The grid's cells: which cells a config plans, their folders and their ``--set`` overrides."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from common.config import (REPO_ROOT, Config, load_config)
from results_grid.config import Detector, Experiments, flatten_set


# ------------------------------------------------------------------------------------------ cells
@dataclass(frozen=True)
class Cell:
    detector: str
    seed: int
    score: str
    model: str
    group: str = "grid"        # grid | paper_protocol | paper_sound | fusion

    @property
    def name(self) -> str:
        prefix = {"grid": "", "paper_protocol": "paperprotocol-", "paper_sound": "", "fusion": ""}[self.group]
        return f"{prefix}{self.detector}-seed{self.seed}-{self.score}-{self.model}"


def grid_cells(ex: Experiments) -> list[Cell]:
    cells = []
    for d in ex.detectors:
        for seed in ex.seeds:
            for score in ex.scores:
                if d.scores is not None and score not in d.scores:
                    continue
                for model in ex.models:
                    cells.append(Cell(d.name, seed, score, model))
    return cells


def fusion_cells(ex: Experiments) -> list[Cell]:
    """``<name>-seed<k>-fusion-<model>`` of every fusion whose members are all in the grid (run after them)."""
    in_grid = {d.name for d in ex.detectors}
    return [Cell(name, seed, "fusion", model, "fusion") for name, f in ex.fusions.items()
            if set(f["members"]) <= in_grid for seed in ex.seeds for model in f["models"]]


def paper_cells(ex: Experiments) -> list[Cell]:
    p = ex.paper
    if not p["enabled"]:
        return []
    name = p["detector"]
    cells = [Cell(name, int(s), "cosine_centroid", "kde", "paper_protocol") for s in p["paper_seeds"]]
    for s in ex.seeds if p["sound_seeds"] is None else p["sound_seeds"]:
        for m in ex.models if p["sound_models"] is None else p["sound_models"]:
            cells.append(Cell(name, int(s), p["sound_score"], str(m), "paper_sound"))
    return cells


def planned_cells(ex: Experiments) -> list[Cell]:
    """Every cell of the grid in run order: single-detector cells, fused cells (after their members), paper's."""
    return grid_cells(ex) + fusion_cells(ex) + paper_cells(ex)


def _yaml_value(v: Any) -> str:
    """A ``--set`` value: JSON is valid YAML flow, so lists, mappings and quoted strings survive."""
    if isinstance(v, str):
        return json.dumps(v)
    return json.dumps(v, sort_keys=True)


def _rel(p: Path) -> str:
    p = Path(p)
    try:
        return p.resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return os.path.relpath(p.resolve(), REPO_ROOT.resolve())


class Grid:
    """Folders, overrides and configs of every cell of one ``Experiments``."""

    def __init__(self, ex: Experiments):
        self.ex = ex
        self.detectors = {d.name: d for d in ex.detectors}
        p = ex.paper
        if p["enabled"]:
            self.detectors[p["detector"]] = Detector(p["detector"], p["config"], flatten_set(p["set"]),
                                                     p["features_file"])

    # folders -----------------------------------------------------------------------------------
    def upstream_dir(self, cell: Cell) -> Path:
        tag = "paper_split" if cell.group == "paper_protocol" else f"seed{cell.seed}"
        return self.ex.work_dir / cell.detector / tag / "upstream"

    def cell_dir(self, cell: Cell) -> Path:
        return self.upstream_dir(cell).parent / (f"paper-protocol-seed{cell.seed}" if cell.group == "paper_protocol"
                                                 else f"{cell.score}-{cell.model}")   # fusion: fusion-<model>

    # overrides ---------------------------------------------------------------------------------
    def upstream_overrides(self, cell: Cell) -> tuple[str, list[str]]:
        det = self.detectors[cell.detector]
        sets = dict(self.ex.common_set)
        sets.update(det.set)
        if cell.group == "paper_protocol":
            sets.update(flatten_set(self.ex.paper["paper_protocol_set"]))
        up = self.upstream_dir(cell)
        sets.update({"seed": cell.seed, "dataset.root": str(self.ex.dataset_root), "output_dir": _rel(up),
                     "split.file": _rel(stage_folder(up, "02") / "split.json")})
        if self.ex.person_map is not None:       # pools of identities, not of source videos
            sets["split.person_map"] = str(self.ex.person_map)
        if det.features_file:
            ff = Path(det.features_file)
            sets["slr.features_file"] = str(ff if ff.is_absolute() else self.ex.dataset_root / ff)
        return det.config, [f"{k}={_yaml_value(v)}" for k, v in sets.items()]

    def fusion_overrides(self, cell: Cell) -> tuple[str, list[str]]:
        """A fused cell: the first member's config and overrides, ``slr.score: fusion`` over the members'
        upstream runs of the same seed (their shared split: stage 08 refuses members whose splits differ)."""
        f = self.ex.fusions[cell.detector]
        first = self.detectors[f["members"][0]]
        ups = [self.upstream_dir(Cell(m, cell.seed, "", "")) for m in f["members"]]
        sets = {**self.ex.common_set, **first.set, **self.ex.by_score.get("fusion", {}),
                **self.ex.by_model.get(cell.model, {})}
        sets.update({"seed": cell.seed, "dataset.root": str(self.ex.dataset_root), "output_dir": _rel(self.cell_dir(cell)),
                     "split.file": _rel(stage_folder(ups[0], "02") / "split.json"), "slr.score": "fusion",
                     "slr.model": cell.model, "slr.fusion.members": [_rel(u) for u in ups],
                     "slr.fusion.names": list(f["members"]), "slr.fusion.score": f["score"]})
        if self.ex.person_map is not None:
            sets["split.person_map"] = str(self.ex.person_map)
        return first.config, [f"{k}={_yaml_value(v)}" for k, v in sets.items()]

    def cell_overrides(self, cell: Cell, up_cfg: Config, before: list) -> tuple[str, list[str]]:
        conf, ups = self.upstream_overrides(cell)
        extra = {}
        if cell.group == "grid":      # per-score / per-model overrides (e.g. robustness on one model only)
            extra.update(self.ex.by_score.get(cell.score, {}))
            extra.update(self.ex.by_model.get(cell.model, {}))
        extra.update({"output_dir": _rel(self.cell_dir(cell)), "slr.score": cell.score, "slr.model": cell.model})
        if cell.group == "paper_protocol":
            extra["slr.protocol"] = "paper"
        ov = ups + [f"{k}={_yaml_value(v)}" for k, v in extra.items()]
        cell_cfg = load_config(REPO_ROOT / conf, ov)
        pins = {}
        for st in before:            # keys the upstream stages read keep their upstream values
            for k in st.config_keys:
                if k == "output_dir":
                    continue
                a, b = up_cfg.get(k, None), cell_cfg.get(k, None)
                if a != b:
                    pins[k] = a
        return conf, ov + [f"{k}={_yaml_value(v)}" for k, v in sorted(pins.items())]


# ------------------------------------------------------------------------------------------ stages
def _stage_table():
    from common.stages import STAGES
    return STAGES


def _sid(stage) -> str:
    """A stage's id for the runner's plan (``id`` in the string-id table, ``number`` before it)."""
    return getattr(stage, "id", None) or stage.number


def stage_prefix(stage) -> str:
    return stage.name.split("_", 1)[0]


def split_table(table, features_only: bool):
    """(upstream stages, cell stages) of the stage table: before 08, and 08 onwards. With a feature
    file instead of a detector, the upstream is stage 02 only."""
    names = [stage_prefix(s) for s in table]
    i08 = names.index("08")
    before = [s for s in table[:i08] if stage_prefix(s) not in ("00", "01")]
    if features_only:
        before = [s for s in before if stage_prefix(s) == "02"]
    return before, list(table[i08:])


# ------------------------------------------------------------------------------------------ reading
def _get(d: Any, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def stage_folder(run_dir: Path, prefix: str, table=None) -> Path:
    table = table or _stage_table()
    for s in table:
        if stage_prefix(s) == prefix:
            return Path(run_dir) / s.name
    raise KeyError(prefix)
