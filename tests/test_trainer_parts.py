"""The trainer's named steps without a dataset: settings read once, best-epoch rule, resume or start."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from common.config import ConfigError, config_from_dict, load_config
from training import trainer as T


def cfg(**training):
    return config_from_dict({"seed": 7, "output_dir": "/tmp/unused", "training": training})


def test_settings_come_from_the_schema_defaults_and_are_checked_once():
    st = T.TrainSettings.from_config(cfg(epochs=4))
    assert (st.epochs, st.batch_size, st.metric_key, st.metric, st.seed) == (4, 32, "val_auc", "auc", 7)
    assert st.resume is True and st.max_steps is None and st.num_workers == 2     # schema defaults
    demo = T.TrainSettings.from_config(load_config("configs/demo.yaml"))
    assert (demo.epochs, demo.batch_size, demo.num_workers) == (15, 8, 0)
    with pytest.raises(ConfigError, match="training.select_metric"):
        cfg(select_metric="val_f1")                   # refused when the config is loaded


@pytest.mark.parametrize("metric, values, best_epoch, best_value", [
    ("auc", [0.6, 0.8, 0.8, 0.7], 2, 0.8),            # ties keep the earlier epoch (strict improvement)
    ("auc", [float("nan"), 0.5, float("nan")], 2, 0.5),  # a NaN epoch is never best
    ("loss", [0.9, 0.4, 0.5, 0.4], 2, 0.4),           # lower is better for loss and eer
    ("eer", [0.3, 0.31, 0.2], 3, 0.2),
])
def test_best_epoch_rule(metric, values, best_epoch, best_value):
    best = {"metric": f"val_{metric}", "value": None, "epoch": None}
    flags = []
    for epoch, v in enumerate(values, start=1):
        best, is_best = T.update_best(best, v, epoch, metric)
        flags.append(is_best)
    assert best["epoch"] == best_epoch and math.isclose(best["value"], best_value)
    assert flags[best_epoch - 1] is True and all(not f for f in flags[best_epoch:])


def _parts(seed=0):
    torch.manual_seed(seed)
    det = nn.Linear(3, 2)
    opt = torch.optim.SGD(det.parameters(), lr=0.1, momentum=0.9)
    return det, opt


def _checkpoint(path, det, opt, epoch, fingerprint, best_epoch=1):
    T.save_checkpoint(path, {"model": det.state_dict(), "optimizer": opt.state_dict(), "scheduler": None,
                             "epoch": epoch, "history": [{"epoch": e} for e in range(1, epoch + 1)],
                             "best": {"metric": "val_auc", "value": 0.9, "epoch": best_epoch},
                             "rng": T.rng_state(), "fingerprint": fingerprint})


def test_resume_from_the_work_folder_restores_weights_and_epoch(tmp_path):
    st = T.TrainSettings.from_config(cfg(epochs=5))
    work = tmp_path / "work"
    work.mkdir()
    saved, opt = _parts(1)
    _checkpoint(work / "last.pt", saved, opt, 3, "fp-a", best_epoch=2)
    det, opt2 = _parts(2)
    p = T.resume_or_start(cfg(), st, work, None, "fp-a", det, opt2, None, T.Dist())
    assert p.start_epoch == 4 and [r["epoch"] for r in p.history] == [1, 2, 3] and p.best["epoch"] == 2
    assert torch.equal(det.weight, saved.weight)
    with pytest.raises(ConfigError, match="different configuration"):
        T.resume_or_start(cfg(), st, work, None, "fp-b", *_parts(3), None, T.Dist())


def test_resume_from_the_published_run_links_its_files_and_never_changes_them(tmp_path):
    st = T.TrainSettings.from_config(cfg(epochs=5))
    published, work = tmp_path / "03_train", tmp_path / ".03_train.work"
    (published / "tensorboard").mkdir(parents=True)
    work.mkdir()
    saved, opt = _parts(1)
    _checkpoint(published / "last.pt", saved, opt, 2, "fp-a")
    (published / "best.pt").write_bytes(b"best weights")
    (published / "tensorboard" / "events").write_bytes(b"appended to")
    before = {p.name: p.read_bytes() for p in published.rglob("*") if p.is_file()}
    det, opt2 = _parts(2)
    p = T.resume_or_start(cfg(), st, work, published, "fp-a", det, opt2, None, T.Dist())
    assert p.start_epoch == 3 and torch.equal(det.weight, saved.weight)
    assert (work / "best.pt").read_bytes() == b"best weights" and not (work / "tensorboard").exists()
    T.save_checkpoint(work / "last.pt", {"overwritten": True})          # the next epoch replaces last.pt ...
    assert {p.name: p.read_bytes() for p in published.rglob("*") if p.is_file()} == before   # ... not the published one


def test_start_over_when_the_published_run_differs_or_resume_is_off(tmp_path):
    published, work = tmp_path / "03_train", tmp_path / "work"
    published.mkdir()
    work.mkdir()
    saved, opt = _parts(1)
    _checkpoint(published / "last.pt", saved, opt, 2, "fp-old")
    p = T.resume_or_start(cfg(), T.TrainSettings.from_config(cfg()), work, published, "fp-new", *_parts(2), None,
                          T.Dist())
    assert p.start_epoch == 1 and p.history == [] and p.best["epoch"] is None and not any(work.iterdir())
    _checkpoint(work / "last.pt", saved, opt, 2, "fp-new")
    (work / "best.pt").write_bytes(b"x")
    p = T.resume_or_start(cfg(), T.TrainSettings.from_config(cfg(resume=False)), work, published, "fp-new",
                          *_parts(2), None, T.Dist())
    assert p.start_epoch == 1 and not (work / "last.pt").exists() and not (work / "best.pt").exists()
