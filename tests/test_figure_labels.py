"""Issue 19 item 7: every figure labelled the way it is computed and readable. Stage 08's score AUC is
oriented by the class a high score points to (0.5 = chance, 1 = perfect) and says so; stages 05-07
read every pool the split has (calib included); the violin, Tippett, ELUB and stage-01 figures are
rendered and their tick labels and titles measured: none overlaps another or leaves the figure."""
from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from common.config import Config  # noqa: E402
from common.features import FeatureDump  # noqa: E402
from evaluation.inputs import dump_paths  # noqa: E402
from preprocessing.plots import plot_crop_status  # noqa: E402
from slr import run_scores  # noqa: E402
from slr_helpers import write_person_scores  # noqa: E402
from slr.scores import stage08  # noqa: E402


# ------------------------------------------------------------------------------------------ stage 08 AUC
def _dump(n=40, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    logit = np.where(labels == 1, 2.0, -2.0) + rng.normal(0, 1.5, n)     # a good detector: fake scores high
    feats = rng.normal(0, 1, (n, 6)) + np.where(labels[:, None] == 0, 1.0, -1.0)
    prob = 1 / (1 + np.exp(-logit))
    vids = np.array([f"v{i // 4}" for i in range(n)])
    return FeatureDump(feats.astype(np.float32), labels, prob.astype(np.float32), np.array([f"{i}.png" for i in range(n)]),
                       vids, logit=logit, person_ids=np.array([f"p{i // 8}" for i in range(n)]))


@pytest.mark.parametrize("score,fake_high", [("logit", True), ("fake_probability", True), ("cosine_centroid", False)])
def test_stage08_score_auc_is_oriented_and_says_so(score, fake_high, tmp_path):
    dumps = {"train": _dump(seed=1), "test": _dump(seed=2)}
    summary = stage08(dumps, tmp_path, batch_size=8, score=score)
    for pool, d in dumps.items():
        s = np.loadtxt(tmp_path / f"{pool}.csv", delimiter=",", skiprows=1, usecols=4)
        want = roc_auc_score(d.labels if fake_high else 1 - d.labels, s)
        assert summary["splits"][pool]["auc"] == pytest.approx(want, abs=1e-12)
        assert summary["splits"][pool]["auc"] > 0.8         # a good score reads as good (0.04 before: issue 19)
    assert f"higher {score} = more {'fake' if fake_high else 'real'}" in summary["auc_definition"]
    assert "0.5 = chance, 1 = perfect" in summary["auc_definition"]


# ------------------------------------------------------------------------------------------ stages 05-07 pools
def test_stages_05_to_07_read_every_dumped_pool_of_the_split(tmp_path):
    import json
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"meta": {"pools": ["train", "val", "calib", "test"]}}))
    feats = tmp_path / "04"
    for p in ("train", "val", "calib", "test"):
        (feats / p).mkdir(parents=True)
    cfg = Config({"output_dir": str(tmp_path), "split": {"file": str(split)},
                  "evaluation": {"features_dir": str(feats)}}, "test-config")
    assert list(dump_paths(cfg)) == ["train", "val", "calib", "test"]
    cfg.data["evaluation"]["splits"] = ["test"]
    assert list(dump_paths(cfg)) == ["test"]


# ------------------------------------------------------------------------------------------ layout
def _extents(fig, artists):
    r = fig.canvas.get_renderer()         # an Agg canvas (assert_readable attaches one to a closed figure)
    return [a.get_window_extent(r) for a in artists if a.get_visible() and a.get_text()]


def assert_readable(fig):
    """Rendered at its saved size: tick labels of an axis never overlap; titles and tick labels stay
    inside the figure; no two titles overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig).draw()
    box = fig.bbox
    titles = _extents(fig, [ax.title for ax in fig.axes] + ([fig._suptitle] if fig._suptitle else []))
    for ax in fig.axes:
        lo, hi = sorted(ax.get_xlim())          # the locator also makes (undrawn) labels outside the view
        ticks = _extents(fig, [t for x, t in zip(ax.get_xticks(), ax.get_xticklabels()) if lo <= x <= hi])
        for a, b in itertools.combinations(ticks, 2):
            assert not a.overlaps(b), ("x tick labels overlap", [t.get_text() for t in ax.get_xticklabels()])
        for e in ticks + _extents(fig, [ax.xaxis.label, ax.yaxis.label]):
            assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and box.y0 - 1 <= e.y0, ("cut off", e, box)
    for e in titles:
        assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and e.y1 <= box.y1 + 1, ("title cut off", e, box)
    for a, b in itertools.combinations(titles, 2):
        assert not a.overlaps(b), "titles overlap"


@pytest.fixture
def saved(monkeypatch):
    """Figures at the moment they are saved (after tight_layout): {file name: figure}."""
    import common.figures as F
    kept = {}
    real = F.save_figure

    def keep(fig, path, *a, **k):
        out = real(fig, path, *a, **k)
        kept[out.name] = fig
        return out
    monkeypatch.setattr(F, "save_figure", keep)
    import slr.plots as P
    monkeypatch.setattr(P, "common_save_figure", keep)
    import preprocessing.plots as PP
    monkeypatch.setattr(PP, "save_figure", keep)
    yield kept
    plt.close("all")


def test_violin_tippett_and_elub_figures_are_readable(tmp_path, saved):
    write_person_scores(tmp_path / "in", {"train": 14, "val": 5, "calib": 7, "test": 4}, per_video=4)   # the demo's pools
    assert run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                            "--bootstrap", "0"]) == 0
    for name in ("violin_frame.png", "violin_video.png", "tippett_frame.png", "tippett_video.png",
                 "elub_frame.png", "elub_video.png"):
        assert_readable(saved[name])


def test_stage01_figure_is_readable(tmp_path, saved):
    statuses = {"ok": 240, "no_face": 0, "multiple_faces": 0, "unreadable": 0}
    summary = {"status_counts": {"all": statuses, "real": statuses, "fake": statuses},
               "frames_sampled": 480, "crops_written": 480}
    rows = [{"score": str(1 + 0.1 * (i % 7)), "label": str(i % 2)} for i in range(480)]
    plot_crop_status(summary, rows, tmp_path / "crop_status.png")
    assert_readable(saved["crop_status.png"])


def test_casework_pdf_lines_stay_inside_the_page(tmp_path, monkeypatch):
    """The one-page PDF's headline, statement and custody lines wrap inside the A4 page."""
    from matplotlib.backends import backend_pdf
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from casework.report import render_pdf
    pages = []
    monkeypatch.setattr(backend_pdf.PdfPages, "savefig", lambda self, fig, **k: pages.append(fig))
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    crop = tmp_path / "crop.png"
    plt.imsave(crop, np.zeros((8, 8, 3)))
    long = ("the findings give weak support for the proposition that the image is real (not manipulated) "
            "rather than the proposition that the image is a deepfake, for persons in frontal-face videos")
    record = {"input": {"path": "/cases/a_rather_long_questioned_video_file_name_from_the_police.mp4",
                        "sha256": "ab" * 32, "size_bytes": 123, "frames_read": 8, "frames_expected": 8},
              "propositions": {"hp": "the image is real", "hd": "the image is a deepfake", "population": long},
              "statement": long, "notes": [long], "verbal_scale_source": long, "created_utc": "2026-12-04",
              "case_id": "c", "system": {"lr_system_sha256": "cd" * 32, "checkpoint_sha256": "ef" * 32,
                                         "config_sha256": "01" * 32, "code_version": "x"},
              "results": [{"face": 0, "warning": long, "log10_lr_bounded": 0.4, "lr_bounded_text": "2.5",
                           "statement": long, "notes": [long], "level_text": "frame level",
                           "conditions": {"inside": [], "outside": [], "not_checked": []}}]}
    render_pdf(record, {"crops": {0: crop}}, tmp_path / "e.pdf", long)
    fig = pages[0]
    FigureCanvasAgg(fig).draw()
    r = fig.canvas.get_renderer()
    texts = [t for t in fig.texts if t.get_text()]
    assert any(t.get_text().startswith("Evidence summary") for t in texts) and len(texts) > 20
    for t in texts:
        e = t.get_window_extent(r)
        assert fig.bbox.x0 <= e.x0 and e.x1 <= fig.bbox.x1, (t.get_text(), e.x1, fig.bbox.x1)
    plt.close("all")
