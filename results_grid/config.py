"""The results grid's config: the ``experiments`` section of a results config, read and validated."""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path


from common.config import (REPO_ROOT, ConfigError, parent_node, parse_value,
                           read_yaml_mapping, resolve_refs)
from common import schema
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
    fusions: dict = field(default_factory=dict)   # name -> {members, models, score} (fused cells)


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


def _default(key: str):
    """The schema's default of ``experiments.<key>`` (common/schema.py RESULTS_KEYS)."""
    return copy.deepcopy(schema.RESULTS_BY_NAME[f"experiments.{key}"].default)


def resolve_dataset_root(section: dict, source: str) -> Path:
    """``$<dataset_root_env>`` (default ``UADFV_ROOT``) when set, else ``dataset_root`` (relative to the
    repository root; default ``../shared/data/UADFV``)."""
    env = section["dataset_root_env"] if "dataset_root_env" in section else _default("dataset_root_env")
    value = os.environ.get(env) if env else None
    if not value:
        value = section["dataset_root"] if "dataset_root" in section else _default("dataset_root")
    if not isinstance(value, str) or not value:
        raise _fail(source, "dataset_root", f"must be a path, got {value!r}")
    p = Path(value).expanduser()
    return (p if p.is_absolute() else REPO_ROOT / p).resolve()


def checked_section(value, name: str, source: str) -> dict:
    """The section ``name`` of a results config, checked against common/schema.py's RESULTS_KEYS: an
    unknown key is refused naming the closest declared one, every value is checked, and every
    absent key with a default gets it (defaults live in the schema only)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: config key '{name}' is a section and must be a mapping of keys, got {value!r}")
    out = {}
    for k, v in value.items():
        key = f"{name}.{k}"
        decl = schema.RESULTS_BY_NAME.get(key)
        if decl is not None:
            err = schema.check_value(decl, v)
            if err:
                raise ConfigError(f"{source}: config key '{key}' {err}")
            out[k] = v
        elif key in schema.RESULTS_SECTIONS:
            out[k] = checked_section(v, key, source)
        else:
            raise ConfigError(f"{source}: unknown config key '{key}'{schema.did_you_mean(key, results=True)}")
    for decl in schema.RESULTS_KEYS:
        rest = decl.name[len(name) + 1:]
        head = rest.split(".")[0]
        if decl.name.startswith(name + ".") and decl.default is not schema.UNSET and head not in out:
            out[head] = checked_section({}, f"{name}.{head}", source) if "." in rest else copy.deepcopy(decl.default)
    return out


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


def _apply_smoke(sec: dict, src: str) -> dict:
    """``experiments.smoke`` over the section: lists and paths replaced, ``set`` / ``detector_set`` /
    ``paper`` merged."""
    sec = dict(sec)
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
    return sec


def _detectors(sec: dict, src: str, grid: str) -> list[Detector]:
    """The detectors of grid ``grid``, in its order."""
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
        conf = d["config"] if "config" in d else sec["base_config"]
        if not isinstance(conf, str) or not (REPO_ROOT / conf).is_file():
            raise _fail(src, f"detectors.{n}.config", f"must name an existing config file, got {conf!r}")
        dset = d.get("set") or {}
        if not isinstance(dset, dict):
            raise _fail(src, f"detectors.{n}.set", "must be a mapping of config keys to values")
        sc = d.get("scores")
        detectors.append(Detector(n, conf, flatten_set(dset), d.get("features_file"),
                                  tuple(_as_list(src, f"detectors.{n}.scores", sc, str)) if sc is not None else None,
                                  bool(d.get("control"))))
    return detectors


def _lists(sec: dict, src: str) -> tuple[list, list, list]:
    """(seeds, scores, models), each a non-empty list; scores and models named by the registries."""
    seeds = _as_list(src, "seeds", sec.get("seeds"), int)
    scores = _as_list(src, "scores", sec.get("scores"), str)
    models = _as_list(src, "models", sec.get("models"), str)
    for key, vals, allowed in (("scores", scores, SCORES), ("models", models, MODELS)):
        bad = [v for v in vals if v not in allowed]
        if bad:
            raise _fail(src, key, f"has unknown value(s) {bad}; allowed: {list(allowed)}")
    return seeds, scores, models


def _by(sec: dict, src: str, key: str) -> dict:
    """``by_model`` / ``by_score``: a name -> its cells' overrides, flattened."""
    m = sec[key]
    if not all(isinstance(v, dict) or v is None for v in m.values()):
        raise _fail(src, key, "must map a model/score name to a mapping of config keys to values")
    return {k: flatten_set(v or {}) for k, v in m.items()}


def _fusions(sec: dict, src: str, models: list) -> dict:
    """``fusions``: name -> {members (declared detectors), models (registry names), score}."""
    out = {}
    for name, f in (sec.get("fusions") or {}).items():
        unknown = [m for m in f["members"] if m not in (sec.get("detectors") or {})]
        if unknown:
            raise _fail(src, f"fusions.{name}.members", f"names detector(s) {unknown} not under experiments.detectors")
        fm = f.get("models") or models
        bad = [m for m in fm if m not in MODELS]
        if bad:
            raise _fail(src, f"fusions.{name}.models", f"has unknown value(s) {bad}; allowed: {list(MODELS)}")
        score = f.get("score", "logit")
        if score not in ("logit", "fake_probability"):
            raise _fail(src, f"fusions.{name}.score", f"must be logit or fake_probability, got {score!r}")
        out[str(name)] = {"members": [str(m) for m in f["members"]], "models": [str(m) for m in fm], "score": score}
    return out


def read_experiments(path: str | Path, overrides=(), grid: str | None = None, smoke: bool = False) -> Experiments:
    """Load a results config (``--set`` overrides apply, ``${key}`` references resolve) and validate its
    ``experiments`` section. ``smoke`` applies ``experiments.smoke`` (lists replaced, ``set`` merged)."""
    data, src = load_results_config(path, overrides)
    sec = data.get("experiments")
    if not isinstance(sec, dict):
        raise ConfigError(f"{src}: no 'experiments' section; a results config needs one (see configs/results_uadfv.yaml)")
    sec = checked_section(_apply_smoke(sec, src) if smoke else sec, "experiments", src)
    grid = grid or sec["grid"]
    detectors = _detectors(sec, src, grid)
    seeds, scores, models = _lists(sec, src)

    def path(key):
        v = sec[key]
        if not v:
            raise _fail(src, key, f"must be a path relative to the repository root, got {v!r}")
        p = Path(v)
        return p if p.is_absolute() else REPO_ROOT / p

    root = resolve_dataset_root(sec, src)
    pm = sec["person_map"]
    if pm is not None and not (root / pm).is_file():
        raise _fail(src, "person_map", f"must name a file under the dataset root {root} (or be null), got {pm!r}")
    return Experiments(src, sec["name"], root, path("work_dir"), path("results_dir"), path("docs"), grid, detectors,
                       seeds, scores, models, flatten_set(sec["set"]), _by(sec, src, "by_model"),
                       _by(sec, src, "by_score"), dict(sec["paper"]), sec["published"],
                       (root / pm).resolve() if pm is not None else None, _fusions(sec, src, models))
