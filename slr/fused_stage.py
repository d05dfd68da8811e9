"""``slr.score: fusion`` (issue 21 item 4): stage 08 of a fused run, over member runs that share a split.

A fused run names finished member runs in ``slr.fusion.members`` (run folders with stages 02-04 done,
e.g. one per detector on the same person split). It runs no detector stage of its own: stages 01-07
and 15/15b are not run (``common.pipeline.is_enabled``); stage 08 reads each member's split file
(``<member>/02_split/split.json``) and stage-04 dumps (``<member>/04_features/<pool>/``) and

1. refuses members whose split files differ (SHA-256) or whose items differ (exit 2, naming both
   files and ``slr.fusion.members``);
2. builds per pool the (items x members) matrix of each member's ``slr.fusion.score`` (logit by
   default), joined by image path, in the first member's item order;
3. fuses it with :func:`slr.fusion_scores.fuse_matrices` (the one fusion, shared with
   ``run_scores --fusion logistic``): members and penalty chosen by CV on calib over whole sources
   (``slr.fusion.source_map``: JSON {video_id: source}, e.g. the generator) or else whole persons, the
   fused log10 LR cross-fitted on calib, fitted on all of calib for the other pools.

The fused LLR is each item's ``score`` (``<pool>.csv``); stages 09-14 and 16 then run unchanged, so the
fused system is validated like a single-detector one. ``members_<pool>.csv`` keeps the member scores;
``summary.json`` keeps the choice record (``fusion``) and each member's detector identity
(``detector``: what stage 10 stores in the saved system and casework checks).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.config import REPO_ROOT, Config, ConfigError, config_from_dict
from common.io import InputError, read_json, sha256_file, write_csv, write_json
from common.splits import person_of_video
from common.stages import folder

from . import metrics, plots
from .io import ScoreSet, write_scores

log = logging.getLogger(__name__)

FUSION = "fusion"
KEY = "slr.fusion.members"
SCORE_AXIS = "score: fused log10 LR of the members (logistic fusion)"


@dataclass
class Member:
    name: str
    run_dir: Path
    split_file: Path
    features_dir: Path
    identity: dict


def members(cfg: Config) -> list[Member]:
    """The members of ``slr.fusion.members`` (at least two finished runs), named by ``slr.fusion.names``
    or their detector's ``model.name`` (``#k`` added to repeats)."""
    dirs = list(cfg.get(KEY) or [])
    if cfg.get("slr.protocol") != "sound" or cfg.get("slr.validation") != "four_pools":
        raise ConfigError(f"{cfg.source}: slr.score fusion needs slr.protocol sound and slr.validation four_pools "
                          f"(the fusion is fitted on calib and validated on test)")
    if len(dirs) < 2:
        raise ConfigError(f"{cfg.source}: slr.score is fusion, so {KEY} must list at least 2 member run folders "
                          f"(each with stages 02-04 done), got {dirs!r}")
    names = cfg.get("slr.fusion.names")
    if names is not None and len(names) != len(dirs):
        raise ConfigError(f"{cfg.source}: slr.fusion.names has {len(names)} names for {len(dirs)} {KEY}")
    out = []
    for k, d in enumerate(dirs):
        run = Path(str(d)).expanduser()
        run = run if run.is_absolute() else REPO_ROOT / run
        split, feats = run / folder("02") / "split.json", run / folder("04")
        for p in (split, feats / "summary.json"):
            if not p.is_file():
                raise InputError(f"{p}: not found; {KEY}[{k}] = {d} must be a finished run with stages 02-04 done")
        ident = dict(read_json(feats / "summary.json").get("detector") or {})
        if not ident:                # a stage-04 summary older than the identity record (issue 21 item 1)
            log.warning("%s: records no detector identity; the fused system cannot check member %d at casework "
                        "(casework refuses it); re-run stage 04 of %s to record it", feats / "summary.json", k, d)
        out.append(Member(str(names[k]) if names else str(ident.get("name") or run.name), run.resolve(), split,
                          feats, ident))
    seen = {}
    for m in out:
        seen[m.name] = seen.get(m.name, 0) + 1
        if seen[m.name] > 1:
            m.name = f"{m.name}#{seen[m.name]}"
    return out


def check_splits(ms: list[Member]) -> str:
    """The members' common split SHA-256; InputError naming both files when one differs."""
    first = sha256_file(ms[0].split_file)
    for k, m in enumerate(ms[1:], 1):
        other = sha256_file(m.split_file)
        if other != first:
            raise InputError(f"{KEY}: the members' split files differ: {ms[0].split_file} (sha256 {first}) and "
                             f"{m.split_file} (sha256 {other}, member {k}); a fusion needs members run on one split "
                             f"(the same seed and split settings)")
    return first


def _joined(pool: str, sets: list[ScoreSet], ms: list[Member]) -> tuple[ScoreSet, np.ndarray]:
    """(the first member's ScoreSet, the (items x members) matrix) joined by image path."""
    base = sets[0]
    cols = [base.scores]
    for k, s in enumerate(sets[1:], 1):
        index = {p: i for i, p in enumerate(s.image_paths)}
        a, b = set(base.image_paths), set(index)
        if a != b or len(index) != len(s):
            diff = sorted(a ^ b)[:3]
            raise InputError(f"{KEY}: pool '{pool}' has different items in {base.source} ({len(a)}) and {s.source} "
                             f"({len(b)}, member {k}), e.g. {diff}; the members must dump the same frames "
                             f"(features.frames_per_video and the split alike)")
        rows = np.array([index[p] for p in base.image_paths])
        if not np.array_equal(s.labels[rows], base.labels):
            raise InputError(f"{KEY}: labels differ between {base.source} and {s.source} (pool '{pool}')")
        cols.append(s.scores[rows])
    return base, np.column_stack(cols)


def member_matrices(ms: list[Member], score: str, batch_size: int) -> dict[str, tuple[ScoreSet, np.ndarray]]:
    """``{pool: (ScoreSet, (items x members) matrix of score)}`` of the pools every member dumped."""
    from ._stage import dir_dumps
    from .scores import pool_scores

    per = []
    for m in ms:
        dumps = dir_dumps(m.features_dir, m.split_file)
        per.append(pool_scores(dumps, score, batch_size, persons=person_of_video(m.split_file))[1])
    pools = [p for p in per[0] if all(p in d for d in per)]
    return {p: _joined(p, [d[p] for d in per], ms) for p in pools}


def calib_sources(cfg: Config, calib: ScoreSet) -> np.ndarray | None:
    """Each calib item's source from ``slr.fusion.source_map`` (JSON {video_id: source}), or None."""
    path = cfg.path("slr.fusion.source_map")
    if path is None:
        return None
    if not Path(path).is_file():
        raise InputError(f"{path}: not found (slr.fusion.source_map); give a JSON {{video_id: source}} or null")
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object {{video_id: source}} (slr.fusion.source_map)")
    missing = sorted({str(v) for v in calib.video_ids} - {str(k) for k in data})
    if missing:
        raise InputError(f"{path}: no source for calib video(s) {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}; every calib video needs one (slr.fusion.source_map)")
    return np.array([str(data[str(v)]) for v in calib.video_ids])


def stage08_fusion(cfg: Config, out: Path) -> dict:
    """Stage 08 of a fused run (module docstring): ``<pool>.csv`` (fused score), ``members_<pool>.csv``,
    ``scores.png`` and ``summary.json``."""
    from .fusion_scores import fuse_matrices
    from .scores import split_record
    from .settings import Settings

    ms = members(cfg)
    split_sha = check_splits(ms)
    score = str(cfg.get("slr.fusion.score"))
    read = member_matrices(ms, score, int(cfg.get("slr.batch_size")))
    names = [m.name for m in ms]
    sets, choice = fuse_matrices(read, names, calib_sources(cfg, read["calib"][0]), Settings.from_config(cfg),
                                 f"{KEY} (pool calib)")
    fig, axes = plots.new_figure(len(sets))
    for ax, (pool, s) in zip(axes, sets.items()):
        write_scores(out / f"{pool}.csv", s)
        write_csv(out / f"members_{pool}.csv", {"image_path": list(s.image_paths), "label": [int(v) for v in s.labels],
                                                **{f"score_{n}": read[pool][1][:, j].tolist()
                                                   for j, n in enumerate(names)}})
        plots.plot_score_density(ax, s.hp, s.hd, title=pool, xlabel=SCORE_AXIS)
    plots.save_figure(fig, out / "scores.png", f"Fused scores of {', '.join(names)}")
    detector = {"fusion": {"score": score, "split_sha256": split_sha, "choice": choice},
                "members": [{"name": m.name, "run_dir": str(m.run_dir), "identity": m.identity} for m in ms]}
    summary = {"score_name": FUSION, "score": f"logistic fusion of the members' {score} ({choice['reason']})",
               "pools": list(sets), "auc_definition": "P(fused LLR of a real item > that of a fake item) + half the "
                                                      "ties; 0.5 = chance", "fusion": choice, "detector": detector,
               "sources": {m.name: str(m.features_dir) for m in ms},
               "splits": {p: split_record(s, float(metrics.auc(s.hp, s.hd))) for p, s in sets.items()}}
    write_json(out / "summary.json", summary)
    return summary


def member_config(run_dir: Path, device: str) -> Config:
    """A member run's config, read back from its ``resolved_config.txt`` (``key = JSON  # origin``), with
    ``output_dir`` = the member folder (so its checkpoint is found) and this run's ``device``."""
    path = Path(run_dir) / "resolved_config.txt"
    if not path.is_file():
        raise InputError(f"{path}: not found; the fused system's member {run_dir} must be a run folder ({KEY})")
    data: dict = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or " = " not in line:
            continue
        key, rest = line.split(" = ", 1)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = json.loads(rest.rsplit("    # ", 1)[0])
    data["output_dir"], data["device"] = str(run_dir), device
    return config_from_dict(data, str(path))


def member_systems(sets: dict[str, ScoreSet], directory: Path, settings) -> dict:
    """Each member alone, for the report's comparison: the LR system fitted the same way (``settings``) on
    the member's own calib scores (``members_<pool>.csv``) and evaluated on every pool with person-cluster
    intervals. ``{name: {level: {pool: metrics}}}``; case intervals are not refitted (not reported)."""
    from dataclasses import replace

    from common.io import read_csv

    from .lr_stages import evaluate
    from .pipeline import fit_all

    cols = {p: read_csv(directory / f"members_{p}.csv") for p in sets}
    names = [c[len("score_"):] for c in cols[next(iter(cols))] if c.startswith("score_")]
    quick = replace(settings, case_interval_n=0)
    out = {}
    for n in names:
        own = {}
        for p, s in sets.items():
            if list(cols[p]["image_path"]) != [str(x) for x in s.image_paths]:
                raise InputError(f"{directory / f'members_{p}.csv'}: items differ from {p}.csv; re-run stage 08")
            own[p] = ScoreSet(np.asarray(cols[p][f"score_{n}"], dtype=np.float64), s.labels, s.video_ids,
                              s.image_paths, f"{s.source} [{n}]", person_ids=s.person_ids)
        levels, _, system = fit_all(own, quick)
        out[n] = evaluate(levels, quick.bootstrap_n, quick.bootstrap_seed, type(system))
    return out
