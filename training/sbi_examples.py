"""Draw ten self-blended examples from real frames so a person can check the SBI generator.

Reads real frames and their landmarks under ``dataset.root`` (``real/frames``, ``real/landmarks``),
one frame from each of ten evenly spaced real videos; applies ``training.sbi`` with a generator
seeded from ``seed``. Writes ``<output_dir>/sbi_examples/sbi_examples.png`` (rows: real crop with
its landmarks, self-blended fake, blend mask, |fake - real| x4) and ``sbi_examples.json`` (the
frames used and the parameters drawn for each).

    python training/sbi_examples.py --config configs/uadfv.yaml [--set training.sbi.blend_ratios=[1]]
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import run_stage  # noqa: E402
from common.config import Config, ConfigError  # noqa: E402
from common.figures import save_figure  # noqa: E402
from common.io import InputError, write_json  # noqa: E402

log = logging.getLogger(__name__)
OUT_NAME = "sbi_examples"


def pick_frames(root: Path, n: int = 10) -> list[tuple[Path, Path]]:
    """(frame, landmarks) of the first frame of ``n`` evenly spaced real videos that have landmarks."""
    frames_dir = root / "real" / "frames"
    if not frames_dir.is_dir():
        raise InputError(f"{frames_dir}: no real frames (config key dataset.root); run stage 01 first")
    videos = sorted(p for p in frames_dir.iterdir() if p.is_dir())
    pairs = []
    for vid in videos:
        for f in sorted(vid.glob("*.png")):
            lm = root / "real" / "landmarks" / vid.name / (f.stem + ".npy")
            if lm.is_file():
                pairs.append((f, lm))
                break
    if not pairs:
        raise InputError(f"{root}: no real frame has landmarks under real/landmarks/; SBI needs them")
    idx = np.unique(np.round(np.linspace(0, len(pairs) - 1, min(n, len(pairs)))).astype(int))
    return [pairs[i] for i in idx]


def make_examples(root: Path, options: dict, seed: int, n: int = 10) -> list[dict]:
    from training.data import read_image
    from preprocessing.sbi import make_sbi_options, self_blend_details
    opts = make_sbi_options(options)
    rng = np.random.default_rng(seed)
    out = []
    for frame, lm_path in pick_frames(root, n):
        img = read_image(frame)
        lm = np.load(lm_path).astype(np.float64)
        res = self_blend_details(img, lm, rng, opts=opts)
        out.append({"frame": str(frame.relative_to(root)), "image": img, "landmarks": lm, "blended": res.blended,
                    "mask": res.mask, "params": res.params})
    return out


def plot_examples(examples: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(examples)
    fig, axes = plt.subplots(4, n, figsize=(1.9 * n, 8.2), squeeze=False)
    rows = ("real + landmarks", "self-blended", "mask (source weight)", "|fake - real| x4")
    for j, ex in enumerate(examples):
        diff = np.clip(np.abs(ex["blended"].astype(int) - ex["image"].astype(int)).sum(2) * 4, 0, 255)
        axes[0, j].imshow(ex["image"])
        axes[0, j].plot(ex["landmarks"][:, 0], ex["landmarks"][:, 1], ".", ms=1.5, color="lime", label="landmarks")
        axes[1, j].imshow(ex["blended"])
        im = axes[2, j].imshow(ex["mask"], cmap="magma", vmin=0, vmax=1)
        axes[3, j].imshow(diff, cmap="gray", vmin=0, vmax=255)
        p = ex["params"]
        axes[0, j].set_title(Path(ex["frame"]).parent.name, fontsize=8)
        axes[1, j].set_title(f"{p['hull_variant']}, r={p['blend_ratio']:g}\n{p['frequency']}", fontsize=7)
        for i in range(4):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0:
                axes[i, j].set_ylabel(rows[i] + "\n(y, px)", fontsize=8)
        axes[3, j].set_xlabel("x (px)", fontsize=7)
    axes[0, 0].legend(loc="lower left", fontsize=6, markerscale=4)
    fig.colorbar(im, ax=axes[2, :].tolist(), fraction=0.01, pad=0.01, label="mask weight (0-1)")
    fig.suptitle("Self-blended images (SBI) from real frames: colour/frequency-changed, warped source "
                 "blended into the untouched frame", fontsize=10)
    save_figure(fig, path, dpi=110, tight=False)


def main(cfg: Config, args) -> dict:
    root = cfg.path("dataset.root")
    if root is None or not root.is_dir():
        raise ConfigError(f"{cfg.source}: dataset.root '{root}' is not a folder")
    try:
        examples = make_examples(root, cfg.section("training.sbi"), cfg.seed, args.n)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise ConfigError(f"{cfg.source}: {exc}") from None
    out_dir = cfg.output_dir / OUT_NAME
    png = out_dir / "sbi_examples.png"
    plot_examples(examples, png)
    summary = {"dataset_root": str(root), "seed": cfg.seed, "n": len(examples),
               "examples": [{"frame": e["frame"], "mask_area_fraction": float((e["mask"] > 0).mean()),
                             "changed_pixels": int((e["blended"] != e["image"]).any(2).sum()), **e["params"]}
                            for e in examples]}
    write_json(out_dir / "sbi_examples.json", summary)
    print(f"sbi_examples: {len(examples)} examples in {png} (parameters in sbi_examples.json)")
    return summary


def _args(p) -> None:
    p.add_argument("--n", type=int, default=10, help="number of examples (default 10)")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, extra_args=_args))
