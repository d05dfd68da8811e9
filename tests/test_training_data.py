"""Training data: split samples on real UADFV, frame subsampling, the epoch sampler, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from common.config import Config, ConfigError
from common.io import InputError
from common.splits import Sample, read_split
from preprocessing.splits import make_split, write_split
from training import data as D


@pytest.fixture(scope="module")
def split_file(uadfv_root, tmp_path_factory):
    path = tmp_path_factory.mktemp("split") / "split.json"
    write_split(path, make_split(uadfv_root, unit="person", ratios=(0.7, 0.15, 0.15), seed=1024))
    return path


def cfg_for(root, split_file, **training) -> Config:
    return Config({"seed": 1024, "output_dir": "/tmp/unused", "dataset": {"root": str(root)},
                   "split": {"file": str(split_file)}, "training": training})


def test_split_samples_person_disjoint_and_subsampled(uadfv_root, split_file):
    cfg = cfg_for(uadfv_root, split_file)
    train, skipped = D.split_samples(cfg, "train")
    test, _ = D.split_samples(cfg, "test")
    assert skipped == [] and len(train) == len(read_split(split_file, "train"))
    person = lambda v: v.split("_")[0]
    assert not {person(s.video_id) for s in train} & {person(s.video_id) for s in test}
    sub = D.subsample_frames(train, 4)
    per_video = {}
    for s in sub:
        per_video.setdefault(s.video_id, []).append(s.path)
    assert max(len(v) for v in per_video.values()) == 4
    # evenly spaced and in temporal order: first and last listed frame of each video are kept
    full = {}
    for s in train:
        full.setdefault(s.video_id, []).append(s.path)
    for vid, paths in per_video.items():
        if len(full[vid]) >= 4:
            assert paths[0] == full[vid][0] and paths[-1] == full[vid][-1]
            pos = [full[vid].index(p) for p in paths]
            assert pos == sorted(pos)


def test_frame_dataset_item_on_real_image(uadfv_root, split_file):
    cfg = cfg_for(uadfv_root, split_file)
    samples, _ = D.split_samples(cfg, "val")
    spec = D.InputSpec(128, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    ds = D.build_eval_dataset(cfg, samples[:2], uadfv_root, spec)
    item = ds[0]
    assert item["image"].shape == (3, 128, 128) and item["image"].dtype == torch.float32
    assert item["label"].item() == samples[0].label and item["path"] == samples[0].path
    raw = D.read_image(uadfv_root / samples[0].path, 128).astype(np.float32) / 255.0
    np.testing.assert_allclose(item["image"].numpy(), (raw.transpose(2, 0, 1) - 0.5) / 0.25, atol=1e-5)


def test_epoch_sampler_is_seeded_balanced_and_shards():
    labels = np.r_[np.zeros(90, int), np.ones(10, int)]
    a = D.EpochSampler(labels, seed=7)
    b = D.EpochSampler(labels, seed=7)
    a.set_epoch(3), b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    assert sorted(a) == list(range(100))                  # a permutation
    bal = D.EpochSampler(labels, seed=7, balanced=True)
    draws = np.concatenate([(bal.set_epoch(e), bal.indices())[1] for e in range(30)])
    assert abs(labels[draws].mean() - 0.5) < 0.03         # 3000 draws, 1:1 classes (sd 0.009)
    shards = [D.EpochSampler(np.zeros(101, int), seed=1, rank=r, world_size=2) for r in range(2)]
    got = [list(s) for s in shards]
    assert len(got[0]) == len(got[1]) == 51 and set(got[0]) | set(got[1]) == set(range(101))


def test_missing_image_is_named_or_skipped(uadfv_root, tmp_path):
    split = {"UADFV": {"UADFV_Real": {"train": {"0000": {"label": "UADFV_Real",
                                                         "frames": ["real/frames/0000/000.png",
                                                                    "real/frames/0000/999.png"]}}},
                       "UADFV_Fake": {"train": {"0000_fake": {"label": "UADFV_Fake",
                                                              "frames": ["fake/frames/0000_fake/000.png"]}}}}}
    path = tmp_path / "split.json"
    path.write_text(json.dumps(split))
    with pytest.raises(InputError, match=r"real/frames/0000/999\.png.*skip_missing"):
        D.split_samples(cfg_for(uadfv_root, path), "train")
    kept, skipped = D.split_samples(cfg_for(uadfv_root, path, skip_missing=True), "train")
    assert skipped == ["real/frames/0000/999.png"] and len(kept) == 2


def test_one_class_split_is_an_error(uadfv_root, tmp_path):
    split = {"UADFV": {"UADFV_Real": {"train": {"0000": {"label": "UADFV_Real",
                                                         "frames": ["real/frames/0000/000.png"]}}}}}
    path = tmp_path / "split.json"
    path.write_text(json.dumps(split))
    with pytest.raises(InputError, match=r"\[train\]: only real images"):
        D.split_samples(cfg_for(uadfv_root, path), "train")


def test_unknown_data_mode_and_bad_augment_are_config_errors(uadfv_root, split_file):
    spec = D.InputSpec(64)
    with pytest.raises(ConfigError, match="training.data_mode: unknown data mode 'nope'"):
        D.build_train_dataset(cfg_for(uadfv_root, split_file, data_mode="nope"), [], uadfv_root, spec)
    with pytest.raises(ConfigError, match="training.augment"):
        D.augment_from_config(cfg_for(uadfv_root, split_file, augment={"rotate": 5}))


def test_registered_mode_is_used_for_training_and_frames_for_eval(uadfv_root, split_file, monkeypatch):
    # an extension (e.g. SBI) registers only a training builder: evaluation falls back to frames
    monkeypatch.setitem(D.TRAIN_MODES, "double", "tests.test_training_data:_double_mode")
    cfg = cfg_for(uadfv_root, split_file, data_mode="double")
    samples = [Sample("real/frames/0000/000.png", 0, "0000")]
    assert len(D.build_train_dataset(cfg, samples, uadfv_root, D.InputSpec(64))) == 2
    assert D.eval_mode_name(cfg) == "frames"


def _double_mode(cfg, samples, root, spec):
    return D.FrameDataset(list(samples) * 2, root, spec)


def test_augment_changes_pixels_but_not_shape(uadfv_root):
    img = D.read_image(uadfv_root / "real/frames/0000/000.png")
    np.random.seed(0)
    aug = D.Augment(hflip=1.0, crop_scale=0.8, brightness=0.1, contrast=0.1, jpeg=1.0)(img)
    assert aug.shape == img.shape and aug.dtype == np.uint8
    assert np.abs(aug.astype(int) - img.astype(int)).mean() > 1.0
