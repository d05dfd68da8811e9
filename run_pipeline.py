"""Run the numbered stages for one config, in order, skipping those that are up to date:
``python run_pipeline.py --config FILE [--from NN] [--to NN] [--force] [--dry-run] [--set key=value ...]``.

Each stage runs as its own process with the same config and overrides, exactly as if it were
started by hand. A stage is skipped (and the runner says so) when its config sections, its external
input files and the outputs of the stages it reads are unchanged since its last successful run;
everything downstream of a stage that runs runs too. ``--force`` runs every stage of the range.
A stage that re-runs after a successful run starts from an empty output folder (its old outputs
are stale); after a failed or interrupted run its folder is kept (stage 03 resumes from last.pt).
Stage 00 (the embedded demo's videos) runs only when the config sets ``demo.enabled: true``.
Exit code: 0 all stages done or up to date, 2 bad config/arguments or a stage script missing,
otherwise the failing stage's exit code (later stages are not run).
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from common.cli import stage_parser
from common.config import REPO_ROOT, ConfigError, load_config
from common.pipeline import clear_previous, current_state, plan, write_stamp
from common.stages import STAGES


def main(argv=None, table=STAGES) -> int:
    """The runner; ``table`` is the stage table (tests pass a small one)."""
    parser = stage_parser(__doc__)
    parser.add_argument("--from", dest="first", type=int, default=table[0].number, help="first stage number")
    parser.add_argument("--to", dest="last", type=int, default=table[-1].number, help="last stage number")
    parser.add_argument("--force", action="store_true", help="run every stage of the range, up to date or not")
    parser.add_argument("--dry-run", action="store_true", help="only say which stages would run and why")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)  # fail early on a bad config
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.first > args.last:
        print(f"error: --from {args.first} is after --to {args.last}", file=sys.stderr)
        return 2
    decisions, warnings = plan(cfg, args.first, args.last, args.force, table)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    missing = [d.stage for d in decisions if d.run and not (REPO_ROOT / d.stage.script).is_file()]
    if missing:
        for s in missing:
            print(f"error: stage {s.name} must run but its script {s.script} does not exist", file=sys.stderr)
        return 2
    overrides = [a for o in args.overrides for a in ("--set", o)]
    config_path = str(Path(cfg.source).resolve())     # the stages run from the repository root
    t_all = time.time()
    summary = []
    for d in decisions:
        stage = d.stage
        if not d.run:
            print(f"== stage {stage.name}: skipped, {d.reason}", flush=True)
            summary.append((stage.name, "skipped", 0.0))
            continue
        print(f"== stage {stage.name}: runs ({d.reason})" if not args.dry_run else
              f"== stage {stage.name}: would run ({d.reason})", flush=True)
        if args.dry_run:
            continue
        if clear_previous(cfg, stage):
            print(f"== stage {stage.name}: previous outputs removed (out of date)", flush=True)
        try:    # the config as this stage's process will read it (the file may have been edited meanwhile)
            now_cfg = load_config(config_path, args.overrides)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        state = current_state(now_cfg, stage, table)    # config and inputs as this run reads them
        t0 = time.time()
        rc = subprocess.call([sys.executable, str(REPO_ROOT / stage.script), "--config", config_path, *overrides],
                             cwd=REPO_ROOT)
        if rc != 0:
            print(f"== stage {stage.name} failed (exit {rc}); later stages not run", file=sys.stderr)
            return rc
        seconds = time.time() - t0
        write_stamp(now_cfg, stage, state, seconds)
        summary.append((stage.name, "ran", seconds))
        print(f"== stage {stage.name} done in {seconds:.1f} s; outputs in {cfg.stage_dir(stage.name, create=False)}",
              flush=True)
    if not args.dry_run:
        ran = sum(1 for _, s, _ in summary if s == "ran")
        print(f"== {ran} stage(s) ran, {len(summary) - ran} skipped, {time.time() - t_all:.1f} s in all; "
              f"outputs under {cfg.output_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
