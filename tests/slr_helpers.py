"""Helpers for the SLR stage tests and benchmark: a person-disjoint split of the paper's feature file
and a config that runs stages 08-14 on it. (Not a test module; the project's real splitter is
preprocessing/splits.py -- this small grouping keeps the SLR tests independent of it.)"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import yaml

from common.features import video_id_from_path
from common.io import write_csv, write_json
from slr.io import ScoreSet

REPO = Path(__file__).resolve().parents[1]


def person_of(video_id: str) -> str:
    """UADFV: the fake video ``NNNN_fake`` is made from the real ``NNNN`` (same person)."""
    return video_id[:-5] if video_id.endswith("_fake") else video_id


def person_split_json(npz_path: Path, out_path: Path, seed: int = 0, ratios=(0.7, 0.15, 0.15)) -> dict:
    """Write a split JSON (common/splits.py format) of the frames in ``npz_path``, persons kept whole.
    Returns ``{split: set of persons}``."""
    d = np.load(npz_path)
    paths = d["image_paths"].astype(str)
    labels = d["labels"].astype(int)
    vids = np.array([video_id_from_path(p) for p in paths])
    persons = sorted({person_of(v) for v in vids})
    rng = np.random.default_rng(seed)
    order = rng.permutation(persons)
    n_tr = int(round(ratios[0] * len(order)))
    n_va = int(round(ratios[1] * len(order)))
    groups = {"train": set(order[:n_tr]), "val": set(order[n_tr:n_tr + n_va]), "test": set(order[n_tr + n_va:])}
    where = {p: s for s, ps in groups.items() for p in ps}
    tree: dict = {"UADFV_Real": {s: {} for s in groups}, "UADFV_Fake": {s: {} for s in groups}}
    for p, lab, v in zip(paths, labels, vids):
        name = "UADFV_Fake" if lab == 1 else "UADFV_Real"
        entry = tree[name][where[person_of(v)]].setdefault(v, {"label": name, "frames": []})
        entry["frames"].append(p)
    write_json(out_path, {"UADFV": tree, "meta": {"unit": "person", "seed": seed, "leaky": False}})
    return groups


def write_config(tmp_path: Path, features_file: Path, split_file: Path, protocol: str = "sound",
                 name: str = "cfg.yaml", **slr) -> Path:
    """A config running stages 08-14 on ``features_file`` divided by ``split_file`` into tmp_path/out."""
    section = {"protocol": protocol, "features_dir": None, "features_file": str(features_file),
               "split_file": str(split_file), "batch_size": 256, "scores_dir": "${output_dir}/08_scores",
               "bandwidth": {"scale": "std", "grid_min": 0.01, "grid_max": 3.0, "grid_n": 40, "n_folds": 10,
                             "seed": "${seed}"},
               "paper_seed": 42, "calibration": "none", "video_level": True}
    section.update(slr)
    cfg = {"seed": 1024, "output_dir": str(tmp_path / f"out_{protocol}"), "slr": section}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def load_script(number: int):
    """Import a numbered SLR script (``slr/NN_*.py``) as a module, to run with ``common.cli.call_main``."""
    from common.stages import get

    path = REPO / get(number).script
    spec = importlib.util.spec_from_file_location(f"slr_stage_{number:02d}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lir_cllr(llr, labels) -> float:
    """Cllr (bits) from the peer library lir 1.3.1; ``labels`` in the project's convention (1 = fake)."""
    from lir.data.models import LLRData
    from lir.metrics import cllr

    return cllr(LLRData(features=np.asarray(llr, float).copy(), labels=1 - np.asarray(labels, int)))


def lir_elub(llr, labels) -> tuple[float, float]:
    """ELUB bounds (log10) from lir 1.3.1; ``labels`` in the project's convention (1 = fake)."""
    from lir.algorithms.bayeserror import elub

    lo, hi = elub(np.asarray(llr, float).copy(), 1 - np.asarray(labels, int))
    return float(lo), float(hi)


# ------------------------------------------------------------------------------------------ synthetic scores
SP, SV, SF = 0.4, 0.3, 0.5                   # person, video and frame standard deviations of the score
SD = math.sqrt(SP ** 2 + SV ** 2 + SF ** 2)  # marginal sd of one frame's score
GRID = np.geomspace(0.05, 3.0, 20)


def generate(rng, n_persons, frames=10, sep=1.0, prefix="p") -> ScoreSet:
    """Persons with a real and a fake video each; score = +-sep + person + video + frame effects, so
    frames of a video (and the two videos of a person) are correlated. The marginal of one frame is
    N(+-sep, SD^2); a detector that is overconfident on its own training persons has a larger sep."""
    s, y, v, p = [], [], [], []
    for i in range(n_persons):
        pe = rng.normal(0, SP)
        for lab in (0, 1):
            x = (sep if lab == 0 else -sep) + pe + rng.normal(0, SV) + rng.normal(0, SF, frames)
            s.append(x)
            y += [lab] * frames
            v += [f"{prefix}{i}_{'rf'[lab]}"] * frames
            p += [f"{prefix}{i}"] * frames
    return ScoreSet(np.concatenate(s), np.array(y), np.array(v), None, f"<{prefix}>", person_ids=np.array(p))


def write_person_scores(directory: Path, persons: dict[str, int], sep: float = 1.0, per_video: int = 5,
                        seed: int = 0) -> None:
    """``<directory>/<pool>.csv`` for ``slr.run_scores``: per pool ``persons[pool]`` persons, each with a
    real and a fake video of ``per_video`` frames; scores N(+sep, 1) for real, N(-sep, 1) for fake."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for pool, n_persons in persons.items():
        cols = {"person_id": [], "video_id": [], "label": [], "score": []}
        for i in range(n_persons):
            for lab in (0, 1):
                for _ in range(per_video):
                    cols["person_id"].append(f"{pool}{i}")
                    cols["video_id"].append(f"{pool}{i}_{lab}")
                    cols["label"].append(lab)
                    cols["score"].append(float((sep if lab == 0 else -sep) + rng.normal(0, 1)))
        write_csv(directory / f"{pool}.csv", cols)
