"""Video LSTM detectors, window dataset and window -> video aggregation, on real UADFV frames."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from common.config import load_config
from common.features import read_feature_dump
from common.splits import Sample, read_split
from training.detectors import build_detector
from training.windows import WindowDataset, frame_number, make_windows, video_scores


def frames_of(root, label, vid):
    d = root / label / "frames" / vid
    return [str(p.relative_to(root)) for p in sorted(d.glob("*.png"))]


def write_split(root, path, plan: dict) -> None:
    """plan: {split: [video ids]}; fakes are '<id>_fake'. The first real video is listed in reverse order."""
    data = {"UADFV": {"UADFV_Real": {}, "UADFV_Fake": {}}, "meta": {"unit": "person", "seed": 0}}
    first = True
    for split, vids in plan.items():
        for vid in vids:
            real = frames_of(root, "real", vid)
            if first:
                real, first = real[::-1], False      # listing order must not matter: windows sort by frame number
            data["UADFV"]["UADFV_Real"].setdefault(split, {})[vid] = {"label": "UADFV_Real", "frames": real}
            data["UADFV"]["UADFV_Fake"].setdefault(split, {})[vid + "_fake"] = {
                "label": "UADFV_Fake", "frames": frames_of(root, "fake", vid + "_fake")}
    path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def split_file(uadfv_root, tmp_path_factory):
    p = tmp_path_factory.mktemp("split") / "split.json"
    write_split(uadfv_root, p, {"train": ["0000", "0001"], "val": ["0002"], "test": ["0003"]})
    return p


@pytest.mark.parametrize("name,opts,t", [("meso4_lstm", {"input_size": 64}, 4),
                                         ("efficientnet_lstm", {"input_size": 32, "variant": "b0"}, 2)])
def test_lstm_output_is_deterministic(name, opts, t):
    torch.manual_seed(0)
    det = build_detector(name, window={"length": t, "lstm_layers": 2, "hidden": 32}, **opts).eval()
    s = opts["input_size"]
    x = torch.rand(3, t, 3, s, s)
    with torch.no_grad():
        a, b = det(x), det(x)
        single = det(x[1:2])
    assert torch.equal(a["logits"], b["logits"]) and torch.equal(a["feature"], b["feature"])
    assert a["logits"].shape == (3, 2) and a["feature"].shape == (3, 32) and det.feature_dim == 32
    assert torch.allclose(a["prob"], torch.softmax(a["logits"], 1)[:, 1])
    assert torch.allclose(single["logits"], a["logits"][1:2], atol=1e-5)   # no dependence on batch companions
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        det(x[:, 0])


def test_lstm_reads_frames_in_order():
    """The window feature is the LSTM's last step over frames in order: reversing the frames changes it,
    and it equals an LSTM run by hand from a zero state on the per-frame backbone features."""
    torch.manual_seed(0)
    det = build_detector("meso4_lstm", input_size=64, window={"length": 4, "hidden": 8}).eval()
    x = torch.rand(2, 4, 3, 64, 64) * torch.linspace(0.2, 1.0, 4).view(1, 4, 1, 1, 1)
    with torch.no_grad():
        out, rev = det(x), det(x.flip(1))
        seq = det.backbone(x.reshape(8, 3, 64, 64)).reshape(2, 4, -1)
        h = torch.zeros(2, 8)
        c = torch.zeros(2, 8)
        w_ih, w_hh = det.lstm.weight_ih_l0, det.lstm.weight_hh_l0
        bias = det.lstm.bias_ih_l0 + det.lstm.bias_hh_l0
        for step in range(4):                       # PyTorch gate order: input, forget, cell, output
            i, f, g, o = (seq[:, step] @ w_ih.T + h @ w_hh.T + bias).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
    torch.testing.assert_close(out["feature"], h, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(rev["feature"], out["feature"], atol=1e-4)


def test_lstm_options_are_checked():
    with pytest.raises(ValueError, match="lstm_layers"):
        build_detector("meso4_lstm", window={"lstm_layers": 3})
    with pytest.raises(ValueError, match="unknown key"):
        build_detector("meso4_lstm", window={"len": 5})


def test_windows_are_consecutive_frames_of_one_video(uadfv_root, split_file):
    samples = read_split(split_file, "train")
    windows = make_windows(samples, length=5, stride=5)
    by_video: dict[str, list] = {}
    for s in samples:
        by_video.setdefault(s.video_id, []).append(frame_number(s.path))
    for w in windows:
        assert len(w.paths) == 5 and len({p.split("/")[-2] for p in w.paths}) == 1
        assert all(p.split("/")[-2] == w.video_id for p in w.paths)
        nums = [frame_number(p) for p in w.paths]
        ordered = sorted(by_video[w.video_id])
        k = ordered.index(nums[0])
        assert nums == ordered[k:k + 5], f"window {nums} is not 5 consecutive sampled frames"
        assert (w.frame_start, w.frame_end) == (nums[0], nums[-1])
    # every frame of every video is covered; 32 frames, length 5, stride 5 -> 6 windows + 1 tail window
    for vid, nums in by_video.items():
        covered = {frame_number(p) for w in windows if w.video_id == vid for p in w.paths}
        assert covered == set(nums)
        assert sum(w.video_id == vid for w in windows) == -(-len(nums) // 5)
    short = make_windows([Sample("real/frames/x/001.png", 0, "x"), Sample("real/frames/x/002.png", 0, "x")], 5)
    assert len(short) == 1 and short[0].paths[-1] == "real/frames/x/002.png"


def test_video_aggregation_matches_hand_computation():
    vids = ["b", "a", "b", "c", "a", "b"]
    scores = [0.2, 0.9, 0.4, 0.5, 0.7, 0.6]
    labels = [0, 1, 0, 1, 1, 0]
    out = video_scores(vids, scores, labels)
    assert list(out["video_ids"]) == ["b", "a", "c"]
    np.testing.assert_allclose(out["scores"], [(0.2 + 0.4 + 0.6) / 3, (0.9 + 0.7) / 2, 0.5])
    assert list(out["labels"]) == [0, 1, 1] and list(out["counts"]) == [3, 2, 1]
    with pytest.raises(ValueError, match="different labels"):
        video_scores(["a", "a"], [0.1, 0.2], [0, 1])


def test_window_dataset_items(uadfv_root, split_file):
    from training.data import InputSpec
    samples = read_split(split_file, "val")
    ds = WindowDataset(make_windows(samples, 3, 3), uadfv_root, InputSpec(64, (0, 0, 0), (1, 1, 1), True))
    item = ds[0]
    assert item["image"].shape == (3, 3, 64, 64) and 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    assert item["frame_start"] < item["frame_end"] and ds.meta_columns == ("frame_start", "frame_end")
    assert set(ds.labels.tolist()) == {0, 1}


def test_train_and_dump_window_features(uadfv_root, split_file, tmp_path):
    """Stage 03 trains meso4_lstm on windows; stage 04 writes one feature row per window with its frame range."""
    from training.dump import dump_features
    from training.trainer import train
    cfg_data = {
        "seed": 3, "output_dir": str(tmp_path / "out"), "device": "cpu",
        "dataset": {"name": "UADFV", "root": str(uadfv_root)},
        "split": {"file": str(split_file)},
        "model": {"name": "meso4_lstm", "pretrained_path": None, "input_size": 64,
                  "window": {"length": 4, "stride": 4, "lstm_layers": 1, "hidden": 16}},
        "training": {"epochs": 1, "batch_size": 4, "num_workers": 0, "data_mode": "windows",
                     "frames_per_video": 12, "val_frames_per_video": 8, "max_steps_per_epoch": 2,
                     "tensorboard": False, "optimizer": {"name": "adam", "lr": 1e-3}},
        "features": {"splits": ["test"], "batch_size": 4, "num_workers": 0, "dtype": "float32"},
    }
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg_data))
    cfg = load_config(cfg_path)
    summary = train(cfg, progress=False)
    assert summary["n_train"] == 4 * 3            # 4 videos x 12 frames / 4 per window
    dump_features(cfg, progress=False)
    dump = read_feature_dump(tmp_path / "out" / "04_features" / "test")
    assert dump.features.shape == (2 * 8, 16)     # 2 test videos x all 32 frames / 4 per window
    assert set(dump.video_ids) == {"0003", "0003_fake"}
    starts = dump.extra["frame_start"].astype(int)
    ends = dump.extra["frame_end"].astype(int)
    assert (ends > starts).all()
    vs = video_scores(dump.video_ids, dump.fake_probability, dump.labels)
    assert len(vs["video_ids"]) == 2 and set(vs["counts"]) == {8}
