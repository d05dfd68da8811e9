"""Score a folder of already-cropped faces with the configured detector (no face detection).

    python -m training.score_crops --config FILE --input DIR --output CSV [--checkpoint FILE] [--set KEY=VALUE]

Every image under DIR (searched recursively: .png .jpg .jpeg .bmp .tif .tiff .webp) is resized to the
detector's input as stage 04 does and scored by :class:`training.dump.FrameScorer` (same transforms,
batch size and dtype as the dump, so a crop the pipeline dumped gets the same numbers). The CSV has
``image_path, logit, fake_probability`` (``logit``: the detector's log-odds of fake), plus, where the
layout gives them (``.../<real|fake>/frames/<video_id>/<frame>.png``, the DeepfakeBench layout of
stage 01), ``video_id``, ``person_id`` (by ``split.person_map`` / ``split.person_regex`` / the UADFV
rule) and ``label`` (0 real, 1 fake). With ``score`` = ``logit`` such a CSV feeds ``slr.run_scores``.

Weights: ``--checkpoint``, else ``features.checkpoint`` (stage 03's best.pt); with
``training.mode: external`` and no stage-03 output, the published weight file of
``model.pretrained_path`` itself. Bad input (no image, an unreadable image) exits 2 naming the file.
"""
from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

import cv2

from common.cli import config_path, setup_logging, stage_parser
from common.config import Config, ConfigError, load_config
from common.io import InputError

from .dump import FrameScorer, checkpoint_path

log = logging.getLogger("score_crops")

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
LABELS = {"real": 0, "fake": 1}


def find_images(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InputError(f"--input {root}: not a folder of face crops")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if not paths:
        raise InputError(f"--input {root}: no image ({', '.join(sorted(SUFFIXES))}) found in it or below it")
    return paths


def layout_of(path: Path, person) -> dict:
    """``video_id`` / ``person_id`` / ``label`` of ``.../<real|fake>/frames/<video_id>/<file>``, else {}."""
    parts = path.parts
    if len(parts) >= 4 and parts[-3] == "frames" and parts[-4] in LABELS:
        return {"video_id": parts[-2], "person_id": person(parts[-2]), "label": LABELS[parts[-4]]}
    return {}


def read_rgb(path: Path):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: could not be read as an image")
    return img[:, :, ::-1]


def person_rule(cfg: Config):
    from preprocessing.splits import person_function, read_person_map
    map_path = cfg.path("split.person_map")
    return person_function(read_person_map(map_path) if map_path else None, cfg.get("split.person_regex"))


def scoring_checkpoint(cfg: Config, given: str | None) -> Path:
    if given:
        return Path(given)
    ck = checkpoint_path(cfg)
    if not ck.is_file() and cfg.get("training.mode") == "external" and cfg.path("model.pretrained_path"):
        return cfg.path("model.pretrained_path")      # the published detector as it is
    return ck


def score_crops(cfg: Config, input_dir: Path, output: Path, checkpoint: str | None = None) -> int:
    """Write the scores CSV; returns the number of images scored."""
    paths = find_images(Path(input_dir))
    person = person_rule(cfg)
    scorer = FrameScorer(cfg, scoring_checkpoint(cfg, checkpoint), who="score_crops")
    rows = []
    for i in range(0, len(paths), scorer.batch_size):
        chunk = paths[i:i + scorer.batch_size]
        out = scorer.run([read_rgb(p) for p in chunk])
        for j, p in enumerate(chunk):
            rows.append({"image_path": str(p), "logit": repr(float(out["logit"][j])),
                         "fake_probability": repr(float(out["fake_probability"][j])),
                         **layout_of(p.relative_to(input_dir), person)})
    columns = ["image_path", "logit", "fake_probability"]
    if all(len(r) > 3 for r in rows):
        columns += ["video_id", "person_id", "label"]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv=None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--input", required=True, help="folder of face crops (searched recursively)")
    parser.add_argument("--output", required=True, help="CSV to write")
    parser.add_argument("--checkpoint", default=None, help="weights (default features.checkpoint; see above)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(config_path(args), args.overrides)
        n = score_crops(cfg, Path(args.input), Path(args.output), args.checkpoint)
    except (ConfigError, InputError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"score_crops: {n} images scored -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
