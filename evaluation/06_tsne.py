"""Stage 06: t-SNE of each split's features, real and fake coloured.

Reads the dumps of stage 04 (see ``evaluation.splits`` / ``evaluation.inputs``); embeds at most
``evaluation.tsne.max_points`` rows per split (a seeded stratified subset above that), after PCA to
``evaluation.tsne.pca_dims``; perplexity ``evaluation.tsne.perplexity``; ``evaluation.tsne.threads``
caps CPU threads (null = all). Writes
``<output_dir>/06_tsne/tsne_<split>.png``, ``tsne_<split>.csv`` (coordinates) and ``summary.json``.
"""
from __future__ import annotations

import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from tqdm.auto import tqdm

from common.cli import run_stage
from common.stages import folder
from common.figures import save_figure
from common.io import write_csv, write_json
from evaluation.inputs import load_dumps
from evaluation.tsne import plot_tsne, tsne_of_dump

STAGE = folder("06")


def main(cfg, args, out):
    max_points = cfg.get("evaluation.tsne.max_points", 2000)
    perplexity = float(cfg.get("evaluation.tsne.perplexity", 30.0))
    pca_dims = cfg.get("evaluation.tsne.pca_dims", 50)
    threads = cfg.get("evaluation.tsne.threads", None)
    summary = {"stage": STAGE, "seed": cfg.seed, "max_points": max_points, "perplexity": perplexity,
               "pca_dims": pca_dims, "splits": {}}
    for name, dump in tqdm(load_dumps(cfg).items(), desc="06 t-SNE"):
        r = tsne_of_dump(dump, cfg.seed, max_points, perplexity, pca_dims, threads)
        fig, ax = plt.subplots(figsize=(6, 5.5))
        plot_tsne(ax, r["xy"], r["labels"], f"t-SNE of {name} features ({len(r['index'])} of {len(dump)} frames)")
        save_figure(fig, out / f"tsne_{name}.png")
        write_csv(out / f"tsne_{name}.csv", {"image_path": r["image_paths"].tolist(), "video_id": r["video_ids"].tolist(),
                                             "label": r["labels"].tolist(), "x": r["xy"][:, 0].tolist(),
                                             "y": r["xy"][:, 1].tolist()})
        summary["splits"][name] = {"n_rows": len(dump), "n_embedded": len(r["index"]),
                                   "n_real": int((r["labels"] == 0).sum()), "n_fake": int((r["labels"] == 1).sum())}
    write_json(out / "summary.json", summary)
    print(f"{STAGE}: tsne_<split>.png, tsne_<split>.csv, summary.json written")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="06"))
