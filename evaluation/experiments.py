"""The results grid: detectors x person-split seeds x score functions x LR models, run through the
pipeline's own runner, resumable, aggregated into ``results/<name>/results.json``.

Design (docs/results.md is generated from the aggregate by ``evaluation.results_doc``):

- A **cell** is one detector x seed x score x model. Its name is ``<detector>-seed<k>-<score>-<model>``.
- Stages before 08 (split, training, feature dump, feature checks, t-SNE, classifier evaluation) do
  not depend on the score or the LR model, so they run once per detector x seed in an **upstream**
  folder ``<work_dir>/<detector>/seed<k>/upstream/`` (an ordinary run folder: ``output_dir``).
- Each cell has its own run folder ``<work_dir>/<detector>/seed<k>/<score>-<model>/`` in which the
  upstream stage folders appear as relative symbolic links (``02_split -> ../upstream/02_split``, ...)
  and stages 08 to the last one (scores, LR system, Tippett, DET, ECE, ELUB, robustness, report) run
  for real. So every cell folder is a complete run folder (the report sees every stage), and the
  runner's stamps see the upstream outputs through the links: retraining a detector makes its cells
  out of date.
- Every run is ``run_pipeline.py`` on the detector's base config with ``--set`` overrides: the grid's
  common overrides (``experiments.set``), the detector's (``experiments.detectors.<d>.set``), the
  seed (top-level ``seed``, from which the person split's seed derives), ``output_dir``, and in a cell
  ``slr.score`` / ``slr.model``. Config keys read by the upstream stages are pinned to their upstream
  values in the cell, so the cell's runner sees the upstream stages as up to date.
- **Resume**: before a run, the runner's own plan says whether any stage of the range must run; a
  cell whose upstream and cell ranges are all up to date is skipped ("up to date"). An interrupted
  cell has a stage without a stamp, which re-runs (stage 03 resumes from ``last.pt``; the other
  stages write their folders atomically), so a rerun finishes with the same figures.
- The cell's figures are read back from its run folder (the summaries of stages 10-14), never
  recomputed, and the test LR CSVs are copied to ``<results_dir>/cells/<cell>/``.
- The paper's features (``paper_srm_features.npz``) run as a pseudo-detector without stages 03-07:
  the ``paper`` protocol on the paper's frame-level split, and the sound protocol on person splits
  (labelled contaminated: the paper's detector saw every person).

Test hook: ``RESULTS_ABORT_AFTER=<cell>@<stage prefix>`` (e.g. ``meso4-seed0-logit-kde@10``) stops
the process abruptly (exit 137, no clean-up) right after that stage of that cell finished, as a
kill would; used by the resumability test.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.config import (REPO_ROOT, Config, ConfigError, load_config, parent_node, parse_value,
                           read_yaml_mapping, resolve_refs)
from common.io import InputError, read_csv, read_json, write_csv, write_json
from slr.models import MODELS as MODELS_REGISTRY
from slr.scores import SCORE_NAMES

ABORT_ENV = "RESULTS_ABORT_AFTER"
LEVELS = ("frame", "video")
POOLS_ORDER = ("train", "val", "calib", "test")
METRICS = ("cllr", "cllr_min", "cllr_cal", "eer", "auc", "misleading_hp", "misleading_hd")
COUNTS = ("n_hp", "n_hd", "n_persons", "n_videos")
LR_COLUMNS = ("person_id", "video_id", "score", "label", "llr")
SCORES = SCORE_NAMES                 # the registries' names (slr.scores.SCORES, slr.models.MODELS)
MODELS = MODELS_REGISTRY.names()
CONTAMINATED = ("features from the paper's SRM detector, trained on frames of every UADFV person: "
                "the test persons are not unseen, so these figures are optimistic (contaminated)")


# ------------------------------------------------------------------------------------------ config
def _fail(source: str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{source}: config key 'experiments.{key}' {msg}")


@dataclass
class Detector:
    name: str
    config: str                      # base experiment config (relative to the repository root)
    set: dict = field(default_factory=dict)
    features_file: str | None = None  # paper-style .npz instead of a trained detector (no stages 03-07)
    scores: tuple | None = None       # restricts the grid's scores for this detector (e.g. no logit in an .npz)
    control: bool = False             # a shortcut control (e.g. a face-identity probe): labelled, never "best"


@dataclass
class Experiments:
    """The ``experiments`` section of a results config, validated (keys listed in docs/experiments.md)."""
    source: str
    name: str
    dataset_root: Path
    work_dir: Path
    results_dir: Path
    docs: Path
    grid: str
    detectors: list[Detector]
    seeds: list[int]
    scores: list[str]
    models: list[str]
    common_set: dict
    by_model: dict            # LR model -> overrides of its cells (stages 08 on)
    by_score: dict            # score -> overrides of its cells
    paper: dict
    published: dict | None
    person_map: Path | None = None   # identity map for split.person_map (relative: under the dataset root)


def _as_list(source, key, value, typ):
    if not isinstance(value, list) or not value or not all(isinstance(v, typ) and not isinstance(v, bool)
                                                            for v in value):
        raise _fail(source, key, f"must be a non-empty list of {typ.__name__}, got {value!r}")
    return list(value)


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    out.update(b or {})
    return out


def flatten_set(mapping: dict, prefix: str = "") -> dict:
    """``set`` mappings as ``{dotted key: value}``. A key written with dots (``training.optimizer``) keeps
    its value whole (a mapping there replaces that section); a plain key whose value is a mapping (as
    ``--set experiments.set.training.epochs=2`` makes) is descended into."""
    out = {}
    for k, v in (mapping or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "." not in str(k):
            out.update(flatten_set(v, key + "."))
        else:
            out[key] = v
    return out


def resolve_dataset_root(section: dict, source: str) -> Path:
    """``$<dataset_root_env>`` (default ``UADFV_ROOT``) when set, else ``dataset_root`` (relative to the
    repository root; default ``../shared/data/UADFV``)."""
    env = section.get("dataset_root_env", "UADFV_ROOT")
    value = os.environ.get(env) if env else None
    if not value:
        value = section.get("dataset_root", "../shared/data/UADFV")
    if not isinstance(value, str) or not value:
        raise _fail(source, "dataset_root", f"must be a path, got {value!r}")
    p = Path(value).expanduser()
    return (p if p.is_absolute() else REPO_ROOT / p).resolve()


def load_results_config(path: str | Path, overrides=()) -> tuple[dict, str]:
    """A results config is not a pipeline config (its cells are): plain YAML, ``--set key=value``
    overrides (YAML values) and ``${key}`` references to keys of the same file, both through
    common.config's own helpers. Returns (data, source)."""
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        p = REPO_ROOT / p
    if not p.is_file():
        raise ConfigError(f"results config '{path}' does not exist; pass --config configs/results_uadfv.yaml")
    data = read_yaml_mapping(p)
    for a in overrides:              # any key (a results config has no schema), YAML values
        if "=" not in a:
            raise ConfigError(f"--set {a}: must look like key=value")
        key, text = a.split("=", 1)
        key = key.strip()
        parent_node(data, key, f"--set (in {p})")[key.split(".")[-1]] = parse_value(text)
    return resolve_refs(data, str(p)), str(p)


def read_experiments(path: str | Path, overrides=(), grid: str | None = None, smoke: bool = False) -> Experiments:
    """Load a results config (``--set`` overrides apply, ``${key}`` references resolve) and validate its
    ``experiments`` section. ``smoke`` applies ``experiments.smoke`` (lists replaced, ``set`` merged)."""
    data, src = load_results_config(path, overrides)
    sec = data.get("experiments")
    if not isinstance(sec, dict):
        raise ConfigError(f"{src}: no 'experiments' section; a results config needs one (see configs/results_uadfv.yaml)")
    sec = dict(sec)
    if smoke:
        sm = sec.get("smoke")
        if not isinstance(sm, dict):
            raise _fail(src, "smoke", "must be a mapping for --smoke")
        for k, v in sm.items():
            if k == "set":
                sec["set"] = _merge(flatten_set(sec.get("set") or {}), flatten_set(v or {}))
            elif k == "detector_set":
                dets = {n: dict(d) for n, d in (sec.get("detectors") or {}).items()}
                for n, extra in (v or {}).items():
                    if n in dets:
                        dets[n]["set"] = _merge(flatten_set(dets[n].get("set") or {}), flatten_set(extra or {}))
                sec["detectors"] = dets
            elif k == "paper":
                sec["paper"] = _merge(sec.get("paper") or {}, v or {})
            else:
                sec[k] = v
    grid = grid or sec.get("grid", "cpu")
    grids = sec.get("grids")
    if not isinstance(grids, dict) or grid not in grids:
        raise _fail(src, "grids", f"must map grid names to detector lists and contain '{grid}' "
                                  f"(choose --grid from {sorted(grids) if isinstance(grids, dict) else []})")
    names = _as_list(src, f"grids.{grid}", grids[grid], str)
    dsec = sec.get("detectors")
    if not isinstance(dsec, dict):
        raise _fail(src, "detectors", "must map detector names to {config, set}")
    detectors = []
    for n in names:
        d = dsec.get(n)
        if not isinstance(d, dict):
            raise _fail(src, f"detectors.{n}", f"is missing: grid '{grid}' lists it; add it under experiments.detectors")
        conf = d.get("config", sec.get("base_config", "configs/uadfv.yaml"))
        if not isinstance(conf, str) or not (REPO_ROOT / conf).is_file():
            raise _fail(src, f"detectors.{n}.config", f"must name an existing config file, got {conf!r}")
        dset = d.get("set") or {}
        if not isinstance(dset, dict):
            raise _fail(src, f"detectors.{n}.set", "must be a mapping of config keys to values")
        sc = d.get("scores")
        detectors.append(Detector(n, conf, flatten_set(dset), d.get("features_file"),
                                  tuple(_as_list(src, f"detectors.{n}.scores", sc, str)) if sc is not None else None,
                                  bool(d.get("control", False))))
    seeds = _as_list(src, "seeds", sec.get("seeds"), int)
    scores = _as_list(src, "scores", sec.get("scores"), str)
    models = _as_list(src, "models", sec.get("models"), str)
    for key, vals, allowed in (("scores", scores, SCORES), ("models", models, MODELS)):
        bad = [v for v in vals if v not in allowed]
        if bad:
            raise _fail(src, key, f"has unknown value(s) {bad}; allowed: {list(allowed)}")
    common = sec.get("set") or {}
    if not isinstance(common, dict):
        raise _fail(src, "set", "must be a mapping of config keys to values")
    common = flatten_set(common)
    by = {}
    for key in ("by_model", "by_score"):
        m = sec.get(key) or {}
        if not isinstance(m, dict) or not all(isinstance(v, dict) or v is None for v in m.values()):
            raise _fail(src, key, "must map a model/score name to a mapping of config keys to values")
        by[key] = {k: flatten_set(v or {}) for k, v in m.items()}
    paper = sec.get("paper") or {}
    if not isinstance(paper, dict):
        raise _fail(src, "paper", "must be a mapping")
    published = sec.get("published")
    if published is not None and not isinstance(published, dict):
        raise _fail(src, "published", "must be null or a mapping")

    def path(key, default):
        v = sec.get(key, default)
        if not isinstance(v, str) or not v:
            raise _fail(src, key, f"must be a path relative to the repository root, got {v!r}")
        p = Path(v)
        return p if p.is_absolute() else REPO_ROOT / p

    root = resolve_dataset_root(sec, src)
    pm = sec.get("person_map")
    if pm is not None and (not isinstance(pm, str) or not (root / pm).is_file()):
        raise _fail(src, "person_map", f"must name a file under the dataset root {root} (or be null), got {pm!r}")
    return Experiments(src, str(sec.get("name", "uadfv")), root,
                       path("work_dir", "outputs/results_uadfv"), path("results_dir", "results/uadfv"),
                       path("docs", "docs/results.md"), grid, detectors, seeds, scores, models, dict(common),
                       by["by_model"], by["by_score"], dict(paper), published,
                       (root / pm).resolve() if pm is not None else None)


# ------------------------------------------------------------------------------------------ cells
@dataclass(frozen=True)
class Cell:
    detector: str
    seed: int
    score: str
    model: str
    group: str = "grid"        # grid | paper_protocol | paper_sound

    @property
    def name(self) -> str:
        prefix = {"grid": "", "paper_protocol": "paperprotocol-", "paper_sound": ""}[self.group]
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


def paper_cells(ex: Experiments) -> list[Cell]:
    p = ex.paper
    if not p or not p.get("enabled", True):
        return []
    name = str(p.get("detector", "paper_srm"))
    cells = [Cell(name, int(s), "cosine_centroid", "kde", "paper_protocol") for s in p.get("paper_seeds", [1024])]
    for s in p.get("sound_seeds", ex.seeds):
        for m in p.get("sound_models", ex.models):
            cells.append(Cell(name, int(s), str(p.get("sound_score", "cosine_centroid")), str(m), "paper_sound"))
    return cells


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
        if p and p.get("enabled", True):
            name = str(p.get("detector", "paper_srm"))
            ff = p.get("features_file", "paper_srm_features.npz")
            self.detectors[name] = Detector(name, str(p.get("config", "configs/uadfv.yaml")),
                                            flatten_set(p.get("set") or {}), ff)

    # folders -----------------------------------------------------------------------------------
    def upstream_dir(self, cell: Cell) -> Path:
        tag = "paper_split" if cell.group == "paper_protocol" else f"seed{cell.seed}"
        return self.ex.work_dir / cell.detector / tag / "upstream"

    def cell_dir(self, cell: Cell) -> Path:
        return self.upstream_dir(cell).parent / (f"paper-protocol-seed{cell.seed}" if cell.group == "paper_protocol"
                                                 else f"{cell.score}-{cell.model}")

    # overrides ---------------------------------------------------------------------------------
    def upstream_overrides(self, cell: Cell) -> tuple[str, list[str]]:
        det = self.detectors[cell.detector]
        sets = dict(self.ex.common_set)
        sets.update(det.set)
        if cell.group == "paper_protocol":
            sets.update(flatten_set(self.ex.paper.get("paper_protocol_set") or {}))
        up = self.upstream_dir(cell)
        sets.update({"seed": cell.seed, "dataset.root": str(self.ex.dataset_root), "output_dir": _rel(up),
                     "split.file": _rel(stage_folder(up, "02") / "split.json")})
        if self.ex.person_map is not None:       # pools of identities, not of source videos
            sets["split.person_map"] = str(self.ex.person_map)
        if det.features_file:
            ff = Path(det.features_file)
            sets["slr.features_file"] = str(ff if ff.is_absolute() else self.ex.dataset_root / ff)
        return det.config, [f"{k}={_yaml_value(v)}" for k, v in sets.items()]

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


def _plan_needs_run(cfg: Config, stages: list, table) -> tuple[bool, str]:
    from common.pipeline import plan
    if not stages:
        return False, ""
    decisions, _ = plan(cfg, _sid(stages[0]), _sid(stages[-1]), False, table)
    wanted = {s.name for s in stages}
    for d in decisions:
        if d.stage.name in wanted and d.run:
            return True, f"{d.stage.name}: {d.reason}"
    return False, "up to date"


def _first_to_run(cfg: Config, stages: list, table) -> tuple[str, str] | None:
    """(stage name, reason) of the first stage of ``stages`` that must run, or None. The plan uses the
    table reduced to ``stages`` (a feature-file run has no stages 03-07 to wait for)."""
    from common.pipeline import plan
    sub = tuple(s for s in table if s.name in {x.name for x in stages})
    decisions, _ = plan(cfg, _sid(stages[0]), _sid(stages[-1]), False, sub)
    wanted = {s.name for s in stages}
    for d in decisions:
        if d.stage.name in wanted and d.run:
            return d.stage.name, d.reason
    return None


def _run_range(conf: str, overrides: list[str], stages: list, force: bool, log) -> int:
    """run_pipeline.py over ``stages`` (contiguous in the table) as a child process (its own output)."""
    import subprocess
    if not stages:
        return 0
    args = [sys.executable, str(REPO_ROOT / "run_pipeline.py"), "--config", str(REPO_ROOT / conf),
            "--from", stage_prefix(stages[0]), "--to", stage_prefix(stages[-1])]
    if force:
        args.append("--force")
    for o in overrides:
        args += ["--set", o]
    log.write(f"$ {' '.join(args)}\n")
    log.flush()
    return subprocess.call(args, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)


def link_upstream(cell_dir: Path, up_dir: Path, before: list) -> None:
    """Relative symbolic links ``cell_dir/<stage> -> ../upstream/<stage>`` for every upstream stage, made
    before the upstream runs (so some may dangle until it has; a disabled stage's link always dangles,
    which reads as "missing", as no folder would)."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    for st in before:
        link, target = cell_dir / st.name, up_dir / st.name
        rel = os.path.relpath(target, cell_dir)
        if link.is_symlink():
            if os.readlink(link) == rel:
                continue
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        os.symlink(rel, link, target_is_directory=True)


def _abort_hook(cell: Cell, stages: list) -> list:
    """The stages to run before the test hook kills the process (all of them when no hook is set)."""
    spec = os.environ.get(ABORT_ENV, "")
    if "@" not in spec:
        return stages
    name, prefix = spec.rsplit("@", 1)
    if name != cell.name:
        return stages
    names = [stage_prefix(s) for s in stages]
    if prefix not in names:
        return stages
    return stages[: names.index(prefix) + 1]


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


def read_summaries(run_dir: Path) -> dict[str, dict]:
    """``{stage prefix: summary.json}`` of stages 10-14 that exist in ``run_dir``."""
    out = {}
    for prefix in ("10", "11", "12", "13", "14"):
        try:
            p = stage_folder(run_dir, prefix) / "summary.json"
        except KeyError:
            continue
        if p.is_file():
            out[prefix] = read_json(p)
    return out


def level_figure(summaries: dict[str, dict], level: str, pool: str, key: str):
    """A figure of ``levels.<level>.<pool>.<key>`` from the first stage summary (10-14) that has it."""
    for prefix in ("10", "13", "12", "11", "14"):
        v = _get(summaries.get(prefix), "levels", level, pool, key)
        if v is not None:
            return v
    return None


def system_bounds(summaries: dict, level: str):
    for prefix in ("10", "14", "13", "12", "11"):
        v = _get(summaries.get(prefix), "system", "bounds_log10", level)
        if v is not None:
            return [float(v[0]), float(v[1])]
    # older summaries: levels.<level>.<pool>.elub {lower_log10, upper_log10}
    for prefix in ("14", "13", "10"):
        e = _get(summaries.get(prefix), "levels", level, "test", "elub")
        if isinstance(e, dict) and "lower_log10" in e:
            return [float(e["lower_log10"]), float(e["upper_log10"])]
    return None


def monotonicity(run_dir: Path, summaries: dict, level: str) -> dict | None:
    """Direction changes of the LLR over the calib score range and the largest drop (log10), from the
    run's summary when it reports them, else measured here on the saved LR system."""
    keep = ("direction_changes", "largest_drop_log10", "monotone")
    for prefix in ("10", "13", "14"):
        v = _get(summaries.get(prefix), "system", "monotonicity", level)
        if isinstance(v, dict):
            parts = {k: v[k] for k in ("model", "final") if isinstance(v.get(k), dict)} or {"model": v}
            top = parts.get("model") or parts.get("final")
            out = {k: top[k] for k in keep if k in top}
            out.update({f"{name}": {k: d[k] for k in keep if k in d} for name, d in sorted(parts.items())})
            out["source"] = f"{prefix} summary: system.monotonicity.{level} (top level = the score model's)"
            return out
    try:
        from slr.system import LRSystem
        system = LRSystem.load(stage_folder(run_dir, "10") / "system")
        hp, hd = system.calib_scores(level)
    except Exception:            # no saved system (older stage 10) or no such level
        return None
    x = np.concatenate([np.asarray(hp, float), np.asarray(hd, float)])
    grid = np.linspace(float(x.min()), float(x.max()), 1000)
    y = np.asarray(system.llr(grid, level=level, bounded=False), float)
    d = np.diff(y)
    sign = np.sign(d[np.abs(d) > 1e-12])
    changes = int(np.sum(sign[1:] != sign[:-1])) if len(sign) > 1 else 0
    # "more real" direction: Hp (real) scores higher or lower? a drop is against the overall trend
    trend = 1.0 if y[-1] >= y[0] else -1.0
    run = np.maximum.accumulate(trend * y) - trend * y
    return {"direction_changes": changes, "largest_drop_log10": float(run.max()), "source": "measured on system"}


def read_cell(run_dir: Path, level: str) -> dict | None:
    """The test figures (and calib, train, val where present) of one level of a finished run folder."""
    summaries = read_summaries(run_dir)
    if not summaries or level_figure(summaries, level, "test", "cllr") is None:
        return None
    pools = {}
    for pool in POOLS_ORDER:
        if level_figure(summaries, level, pool, "cllr") is None:
            continue
        rec = {}
        for k in METRICS + COUNTS:
            v = level_figure(summaries, level, pool, k)
            rec[k] = None if v is None else (int(v) if k in COUNTS else float(v))
        ci = level_figure(summaries, level, pool, "ci95")
        rec["ci95"] = {k: [float(ci[k][0]), float(ci[k][1])] for k in sorted(ci)
                       if isinstance(ci.get(k), (list, tuple)) and len(ci[k]) == 2} if isinstance(ci, dict) else {}
        for extra in ("paper_eer", "paper_cllr_calibrated", "devpav", "llr_overestimation"):
            v = level_figure(summaries, level, pool, extra)
            if v is not None:
                rec[extra] = float(v)
        pools[pool] = rec
    test = pools.pop("test")
    test["bounds_log10"] = system_bounds(summaries, level)
    test["monotonicity"] = monotonicity(run_dir, summaries, level)
    test["flags"] = degenerate_flags(test, level_figure(summaries, level, "test", "llr_range"),
                                     {p: pools[p] for p in pools if p == "calib"})
    return {"test": test, "other_pools": pools}


ROBUST_METRICS = ("cllr", "cllr_min", "eer", "auc", "misleading_hp", "misleading_hd")


def read_robustness(run_dir: Path, level: str) -> dict | None:
    """Stage 15's figures of one level (None when the cell did not run it): the clean row and, per
    degradation family, every strength's figures with their person intervals, and the validated range."""
    try:
        p = stage_folder(run_dir, "15") / "summary.json"
    except KeyError:
        return None
    if not p.is_file():
        return None
    s = read_json(p)

    def row(r):
        ci = r.get("ci95") or {}
        return {"strength": r.get("strength"), "applied_to": r.get("applied_to"),
                **{k: r.get(k) for k in ROBUST_METRICS},
                "ci95": {k: list(ci[k]) for k in ROBUST_METRICS if isinstance(ci.get(k), (list, tuple))}}

    rows = [r for r in s.get("table", []) if r.get("level") == level]
    clean = next((row(r) for r in rows if r.get("family") == "clean"), None)
    families = {}
    for fam, strengths in (s.get("degradations") or {}).items():
        vr = (s.get("validated_range") or {}).get(fam) or {}
        families[fam] = {"settings": [row(r) for r in rows if r.get("family") == fam],
                         "validated_strongest": vr.get("strongest"), "status": vr.get("status"),
                         "tested": list(strengths)}
    return {"n_frames": s.get("n_frames"), "n_persons": s.get("n_persons"), "degenerate": s.get("degenerate"),
            "criteria": s.get("criteria"), "clean": clean, "families": families,
            "summary": _rel(p)}


def degenerate_flags(test: dict, llr_range, calib: dict) -> list[str]:
    """Reasons a cell's system is degenerate (issue 10: such a system never passes validation)."""
    flags = []
    b = test.get("bounds_log10")
    if b and abs(b[1] - b[0]) < 1e-9:
        flags.append("zero-width ELUB bounds")
    if isinstance(llr_range, (list, tuple)) and len(llr_range) == 2 and abs(llr_range[1] - llr_range[0]) < 1e-12:
        flags.append("every test LR equal")
    for pool, rec in (("test", test), *calib.items()):
        n = rec.get("n_persons")
        if n is not None and n < 3:
            flags.append(f"{pool} pool with {n} persons")
    return flags


def pool_counts(run_dir: Path) -> dict:
    """Persons, videos and frames (real/fake) per pool of the run's split file (its ``meta.counts``
    when stage 02 wrote them, else counted from the file)."""
    from common.splits import label_of
    try:
        split = read_json(stage_folder(run_dir, "02") / "split.json")
    except (KeyError, OSError, ValueError, InputError):
        return {}
    if not isinstance(split, dict):
        return {}
    meta = split.get("meta", {}) if isinstance(split.get("meta"), dict) else {}
    keys = ("persons", "videos_real", "videos_fake", "frames_real", "frames_fake")
    mc = meta.get("counts")
    if isinstance(mc, dict) and mc and all(isinstance(v, dict) and all(k in v for k in keys) for v in mc.values()):
        return {p: {k: int(mc[p][k]) for k in keys} for p in sorted(mc, key=_pool_rank)}
    persons = meta.get("persons") or {}
    counts: dict[str, dict] = {}
    for dataset, by_label in split.items():
        if dataset == "meta" or not isinstance(by_label, dict):
            continue
        for label_name, by_pool in by_label.items():
            for pool, videos in (by_pool or {}).items():
                c = counts.setdefault(pool, {"persons": set(), "videos_real": 0, "videos_fake": 0,
                                             "frames_real": 0, "frames_fake": 0})
                kind = "fake" if label_of(label_name) == 1 else "real"
                for vid, info in videos.items():
                    c[f"videos_{kind}"] += 1
                    c[f"frames_{kind}"] += len(info.get("frames", [])) if isinstance(info, dict) else 0
                    c["persons"].add(persons.get(vid, vid))
    return {p: {k: (len(c[k]) if k == "persons" else int(c[k])) for k in keys}
            for p, c in sorted(counts.items(), key=lambda kv: _pool_rank(kv[0]))}


def _pool_rank(pool: str) -> tuple:
    return (POOLS_ORDER.index(pool) if pool in POOLS_ORDER else len(POOLS_ORDER), pool)


def copy_lr_csv(run_dir: Path, level: str, dest: Path) -> Path | None:
    """The run's test LR CSV of ``level`` reduced to ``person_id, video_id, score, label, llr``."""
    src = stage_folder(run_dir, "10") / ("test_lr.csv" if level == "frame" else "test_video_lr.csv")
    if not src.is_file():
        return None
    cols = read_csv(src, required=("score", "label", "llr"))
    n = len(cols["score"])
    out = {}
    for c in LR_COLUMNS:
        if c in cols:
            out[c] = cols[c]
        elif c == "person_id" and "video_id" in cols:      # a CSV without persons: each video is one
            out[c] = list(cols["video_id"])
        else:
            out[c] = [""] * n
    if level == "video" and "n_frames" in cols:
        out["n_frames"] = cols["n_frames"]
    return write_csv(dest, out)


# ------------------------------------------------------------------------------------------ running
def device_text() -> str:
    try:
        import torch
        if torch.cuda.is_available():
            return f"cuda: {torch.cuda.get_device_name(0)} (torch {torch.__version__})"
        return f"cpu: {os.cpu_count()} cores, {platform.processor() or platform.machine()} (torch {torch.__version__})"
    except Exception:
        return f"cpu: {os.cpu_count()} cores"


def run_grid(ex: Experiments, force: bool = False, out=sys.stdout, keep_going: bool = False,
             dry_run: bool = False) -> dict | None:
    """Run (or skip, when up to date) every cell, then aggregate. Returns results.json's content
    (``None`` with ``dry_run``: every cell's configs are loaded and planned, nothing runs)."""
    table = _stage_table()
    grid = Grid(ex)
    cells = grid_cells(ex) + paper_cells(ex)
    t_all = time.time()
    if not dry_run:
        ex.work_dir.mkdir(parents=True, exist_ok=True)
    timing_path = ex.work_dir / "timing.json"
    timing = read_json(timing_path) if timing_path.is_file() else {}
    failures = []
    for i, cell in enumerate(cells, 1):
        det = grid.detectors[cell.detector]
        before, after = split_table(table, det.features_file is not None)
        conf, up_ov = grid.upstream_overrides(cell)
        up_cfg = load_config(REPO_ROOT / conf, up_ov)
        conf, cell_ov = grid.cell_overrides(cell, up_cfg, before)
        cell_cfg = load_config(REPO_ROOT / conf, cell_ov)
        cdir = grid.cell_dir(cell)
        if not dry_run:
            link_upstream(cdir, grid.upstream_dir(cell), before)
        if dry_run:
            run_up, why_up = _plan_needs_run(up_cfg, before, table)
            run_cell, why_cell = _plan_needs_run(cell_cfg, after, table)
        else:    # one plan over the whole range: the upstream stages are seen through the cell's links
            first = _first_to_run(cell_cfg, before + after, table)
            run_up = first is not None and first[0] in {s.name for s in before}
            run_cell = first is not None
            why_up = why_cell = f"{first[0]}: {first[1]}" if first else ""
        head = f"[{i}/{len(cells)}] {cell.name}"
        if dry_run:
            state = "would run (" + (why_up if run_up else why_cell) + ")" if (force or run_up or run_cell) \
                else "up to date"
            print(f"{head}: {state} -> {_rel(cdir)} [{conf}, device {cell_cfg.get('device')}]",
                  file=out, flush=True)
            continue
        if not (force or run_up or run_cell):
            print(f"{head}: up to date, skipped ({_rel(cdir)})", file=out, flush=True)
            continue
        print(f"{head}: runs ({why_up if run_up else why_cell}) -> {_rel(cdir)}", file=out, flush=True)
        t0 = time.time()
        log_path = cdir / "experiment.log"
        with open(log_path, "a") as log:
            rc = _run_range(conf, up_ov, before, force, log) if (force or run_up) else 0
            if rc == 0:
                stages = _abort_hook(cell, after)
                rc = _run_range(conf, cell_ov, stages, force, log)
                if rc == 0 and len(stages) < len(after):
                    log.write(f"{ABORT_ENV}: aborting after stage {stage_prefix(stages[-1])}\n")
                    log.flush()
                    os._exit(137)
        seconds = time.time() - t0
        if rc != 0:
            msg = f"{head}: FAILED (exit {rc}); log: {_rel(log_path)}"
            print(msg, file=out, flush=True)
            tail = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()][-4:]
            print("\n".join(f"    {ln}" for ln in tail), file=sys.stderr, flush=True)
            failures.append(msg)
            if not keep_going:
                raise SystemExit(rc)
            continue
        timing[cell.name] = round(seconds, 1)
        write_json(timing_path, timing)
        rec = read_cell(cdir, "frame")
        brief = (f"test Cllr {rec['test']['cllr']:.3g}, AUC {rec['test']['auc']:.3g}" if rec else "no test figures")
        print(f"{head}: done in {seconds:.1f} s ({brief})", file=out, flush=True)
    if dry_run:
        return None
    results = aggregate(ex, cells, grid, timing, time.time() - t_all)
    if failures:
        results["failures"] = failures
    return results


# ------------------------------------------------------------------------------------------ aggregate
def training_seconds(run_dirs) -> float | None:
    """Sum of the epoch times in each distinct ``03_train/log.csv`` (cells share their upstream's): the
    training cost whenever it ran, which a resumed training does not repeat."""
    logs = set()
    for d in run_dirs:
        try:
            p = stage_folder(d, "03") / "log.csv"
        except KeyError:
            continue
        if p.is_file():
            logs.add(p.resolve())
    total = 0.0
    for p in sorted(logs):
        cols = read_csv(p)
        total += sum(float(v) for v in cols.get("seconds", []))
    return round(total, 1) if logs else None


def _cell_entry(cell: Cell, level: str, rec: dict, lr_csv: Path | None, run_dir: Path, control: bool = False) -> dict:
    from evaluation.grid_detector import detector_record
    det = detector_record(run_dir)
    learned = (det or {}).get("learned") or {}
    cv = (read_summaries(run_dir).get("10") or {}).get("crossval")      # slr.validation: crossval
    validation = (f"crossval: {cv.get('folds')} person-grouped folds over {' + '.join(cv.get('pools') or [])}, "
                  f"every person validated out of fold" if isinstance(cv, dict) else "four pools")
    return {"cell": cell.name, "detector": cell.detector, "seed": cell.seed, "score": cell.score,
            "model": cell.model, "level": level,
            "protocol": "paper" if cell.group == "paper_protocol" else "sound",
            "lr_csv": _rel(lr_csv) if lr_csv else None, "run_dir": _rel(run_dir),
            "test": rec["test"], "other_pools": rec["other_pools"],
            "detector_identity": (det or {}).get("identity"), "detector_auc": (det or {}).get("auc"),
            "detector_learned": learned or None, "detector_flag": learned.get("flag"), "control": control,
            "validation": validation}


def _stats(values: list[float]) -> dict:
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    if not v:
        return {"mean": None, "min": None, "max": None, "n": 0}
    return {"mean": float(np.mean(v)), "min": float(min(v)), "max": float(max(v)), "n": len(v)}


def summarise_groups(entries: list[dict]) -> list[dict]:
    """Mean and range over seeds per detector x score x model x level x protocol."""
    groups: dict[tuple, list[dict]] = {}
    for e in entries:
        groups.setdefault((e["detector"], e["score"], e["model"], e["level"], e["protocol"]), []).append(e)
    out = []
    for (d, s, m, lv, pr), es in groups.items():
        stats = {k: _stats([e["test"].get(k) for e in es]) for k in METRICS}
        lo = _stats([(e["test"].get("bounds_log10") or [None, None])[0] for e in es])
        hi = _stats([(e["test"].get("bounds_log10") or [None, None])[1] for e in es])
        mono = _stats([(e["test"].get("monotonicity") or {}).get("direction_changes") for e in es])
        out.append({"detector": d, "score": s, "model": m, "level": lv, "protocol": pr,
                    "seeds": sorted(e["seed"] for e in es), "test": stats,
                    "bounds_lower_log10": lo, "bounds_upper_log10": hi, "direction_changes": mono})
    return out


def aggregate(ex: Experiments, cells: list[Cell], grid: Grid, timing: dict, wall: float) -> dict:
    entries, paper_entries, sound_paper = [], [], []
    pools = {}
    missing = []
    for cell in cells:
        cdir = grid.cell_dir(cell)
        dest = ex.results_dir / "cells" / cell.name
        for level in LEVELS:
            rec = read_cell(cdir, level)
            if rec is None:
                if level == "frame":
                    missing.append(cell.name)
                continue
            lr = copy_lr_csv(cdir, level, dest / ("test_lr.csv" if level == "frame" else "test_video_lr.csv"))
            e = _cell_entry(cell, level, rec, lr, cdir, grid.detectors[cell.detector].control)
            robust = read_robustness(cdir, level)
            if robust is not None:           # stage 15's table beside the cell's LR CSVs, for rechecking
                csv = write_csv(dest / "robustness.csv", read_csv(stage_folder(cdir, "15") / "robustness.csv"))
                e["robustness"] = {**robust, "csv": _rel(csv)}
            {"grid": entries, "paper_protocol": paper_entries, "paper_sound": sound_paper}[cell.group].append(e)
        key = f"{cell.detector}/{'paper_split' if cell.group == 'paper_protocol' else f'seed{cell.seed}'}"
        if key not in pools:
            pools[key] = pool_counts(cdir)
    published = ex.published
    results = {
        "name": ex.name,
        "grid": {"name": ex.grid, "detectors": [d.name for d in ex.detectors], "seeds": ex.seeds,
                 "scores": ex.scores, "models": ex.models, "levels": list(LEVELS),
                 "overrides": {k: ex.common_set[k] for k in sorted(ex.common_set)},
                 "person_map": f"<dataset root>/{ex.person_map.name}" if ex.person_map else None,
                 "controls": [d.name for d in ex.detectors if d.control],
                 "by_model": ex.by_model, "by_score": ex.by_score,
                 "detector_overrides": {d.name: {"config": d.config, **{k: d.set[k] for k in sorted(d.set)}}
                                        for d in ex.detectors},
                 "config": _rel(Path(ex.source))},
        "cells": entries,
        "groups": summarise_groups(entries),
        "pools": pools,
        "paper": {
            "published": published,
            "paper_protocol": paper_entries,
            "paper_protocol_groups": summarise_groups(paper_entries),
            "sound_on_paper_features": sound_paper,
            "sound_on_paper_features_groups": summarise_groups(sound_paper),
            "features": _rel(ex.dataset_root / str(ex.paper.get("features_file", "paper_srm_features.npz")))
            if ex.paper else None,
            "contaminated": CONTAMINATED,
        },
        "missing_cells": missing,
        "seconds": round(float(sum(timing.get(c.name, 0.0) for c in cells)), 1),
        "seconds_note": "sum over cells of the time each took when it last ran (upstream stages counted in the "
                        "first cell of their detector x seed)",
        "training_seconds": training_seconds(grid.cell_dir(c) for c in cells),
        "training_seconds_note": "sum of the epoch times in every training log (stage 03 log.csv) of the grid, whenever each "
                                 "epoch ran (a resumed training counts its earlier epochs here, not in seconds)",
        "device": device_text(),
    }
    return results


def figure_cells(results: dict) -> tuple[dict | None, dict | None]:
    """Best and worst grid cell by test Cllr at frame level (ties broken by name)."""
    frame = [e for e in results["cells"] if e["level"] == "frame" and e["test"].get("cllr") is not None
             and np.isfinite(e["test"]["cllr"]) and not e.get("control")]
    if not frame:
        return None, None
    frame.sort(key=lambda e: (e["test"]["cllr"], e["cell"]))
    return frame[0], frame[-1]


def write_outputs(ex: Experiments, results: dict) -> tuple[Path, Path]:
    """results.json, the best/worst Tippett figure, and the generated docs page."""
    from evaluation.results_doc import render, tippett_figure
    ex.results_dir.mkdir(parents=True, exist_ok=True)
    best, worst = figure_cells(results)
    figs = {}
    if best is not None:
        fig = ex.results_dir / "tippett_best_worst.png"
        tippett_figure(best, worst, fig)
        figs["tippett_best_worst"] = _rel(fig)
    results["figures"] = figs
    results["docs"] = _rel(ex.docs)
    results["results_json"] = _rel(ex.results_dir / "results.json")
    rj = write_json(ex.results_dir / "results.json", results)
    from common.io import atomic_path
    ex.docs.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(ex.docs) as tmp:
        tmp.write_text(render(results), encoding="utf-8")
    return rj, ex.docs


def content_hash(results: dict) -> str:
    """Hash of the figures of every cell (timings and device excluded): equal for equal results."""
    keep = {"cells": results["cells"], "paper": results["paper"], "groups": results["groups"]}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()
