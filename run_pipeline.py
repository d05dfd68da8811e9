"""Run the numbered stages for one config, in order, skipping those that are up to date:
``python run_pipeline.py --config FILE [--from ID] [--to ID] [--force] [--dry-run] [--print-config] [--set key=value ...]``.

Each stage runs as its own process with the same config and overrides, exactly as if it were
started by hand. A stage is skipped (and the runner says so) when its config sections, its external
input files and the outputs of the stages it reads are unchanged since its last successful run;
everything downstream of a stage that runs runs too. ``--force`` runs every stage of the range.
Stage ids come from the stage table (common/stages.py): 00 .. 16, 03a, 04b; ``--from 3`` = ``--from 03``.
A stage writes into its work folder ``<output_dir>/.<folder>.work`` that replaces its folder only on
success: a failed run leaves every earlier output as it was (stages 01 and 03 keep their work folder
and resume there). ``--print-config`` prints the resolved config with each value's origin.
Stage 00 (the embedded demo's videos) runs only when the config sets ``demo.enabled: true``; 03a and
04b (DeepFidelity) only with ``training.data_mode: fidelity``.
The run folder keeps ``resolved_config.txt`` (the ``--print-config`` form) and ``logs/<stage>.log``
(each stage's console). Ctrl-C stops the running stage (one line: where its work folder is, that
earlier outputs are unchanged) and the runner with exit code 130.
Exit code: 0 all stages done or up to date, 2 bad config/arguments or a stage script missing,
130 interrupted (Ctrl-C), otherwise the failing stage's exit code (later stages are not run).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common.cli import load_or_print_config, stage_parser
from common.config import REPO_ROOT, Config, ConfigError, config_banner, load_config
from common.pipeline import current_state, plan, position, write_stamp
from common.console import EXIT_INTERRUPTED, one_interrupt, write_resolved_config
from common.stages import active_table, folder, table_env
from evaluation.verdict import report_verdict


def run_stage_process(cmd: list, env: dict) -> int:
    """Run one stage's process; Ctrl-C is passed on to it (it cleans up and says so in one line) and
    the runner waits for it, ignoring further Ctrl-C, instead of killing it mid-write."""
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env)
    try:
        with one_interrupt():       # also when SIGINT was ignored at start (a job started in the background)
            return proc.wait()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait()
        return EXIT_INTERRUPTED


def _parse(argv, table):
    parser = stage_parser(__doc__)
    parser.add_argument("--from", dest="first", default=table[0].id, help="first stage id (e.g. 08, 3a)")
    parser.add_argument("--to", dest="last", default=table[-1].id, help="last stage id")
    parser.add_argument("--force", action="store_true", help="run every stage of the range, up to date or not")
    parser.add_argument("--dry-run", action="store_true", help="only say which stages would run and why")
    return parser.parse_args(argv)


def _checked_plan(cfg, args, table):
    """The run decisions, or an exit code when the range is bad or a stage to run has no script."""
    try:
        if position(args.first, table) > position(args.last, table):
            print(f"error: --from {args.first} is after --to {args.last}", file=sys.stderr)
            return 2
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    decisions, warnings = plan(cfg, args.first, args.last, args.force, table)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    missing = [d.stage for d in decisions if d.run and not (REPO_ROOT / d.stage.script).is_file()]
    if missing:
        for s in missing:
            print(f"error: stage {s.name} must run but its script {s.script} does not exist", file=sys.stderr)
        return 2
    return decisions


def _run_one(stage, cfg, args, table) -> tuple[int, float]:
    """Run one stage's process and stamp it; (exit code, seconds)."""
    overrides = [a for o in args.overrides for a in ("--set", o)]
    config_file = str(Path(cfg.source).resolve())     # the stages run from the repository root
    try:    # the config as this stage's process will read it (the file may have been edited meanwhile)
        now_cfg = load_config(config_file, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2, 0.0
    state = current_state(now_cfg, stage, table)    # config and inputs as this run reads them
    t0 = time.time()
    rc = run_stage_process([sys.executable, str(REPO_ROOT / stage.script), "--config", config_file, *overrides],
                           {**os.environ, **table_env(table)})
    if rc == EXIT_INTERRUPTED:      # the stage said where its work folder is and that earlier outputs are kept
        return rc, 0.0
    if rc != 0:
        print(f"== stage {stage.name} failed (exit {rc}); later stages not run", file=sys.stderr)
        return rc, 0.0
    seconds = time.time() - t0
    write_stamp(now_cfg, stage, state, seconds)
    return 0, seconds


def _run_stages(decisions, cfg, args, table) -> tuple[int, list]:
    """Run (or with --dry-run only announce) each decided stage; (exit code, [(name, ran/skipped, s)])."""
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
        rc, seconds = _run_one(stage, cfg, args, table)
        if rc != 0:
            return rc, summary
        summary.append((stage.name, "ran", seconds))
        print(f"== stage {stage.name} done in {seconds:.1f} s; outputs in {cfg.output_dir / stage.folder}",
              flush=True)
    return 0, summary


def main(argv=None, table=None) -> int:
    """The runner; ``table`` is the stage table (tests pass a small one; default: common.stages.active_table)."""
    table = active_table() if table is None else table
    args = _parse(argv, table)
    cfg = load_or_print_config(args)                 # fail early on a bad config
    if not isinstance(cfg, Config):
        return cfg
    print(f"== {config_banner(cfg)}", flush=True)
    decisions = _checked_plan(cfg, args, table)
    if isinstance(decisions, int):
        return decisions
    if not args.dry_run:
        write_resolved_config(cfg)
    t_all = time.time()
    rc, summary = _run_stages(decisions, cfg, args, table)
    if rc != 0:
        return rc
    if not args.dry_run:
        ran = sum(1 for _, s, _ in summary if s == "ran")
        print(f"== {ran} stage(s) ran, {len(summary) - ran} skipped, {time.time() - t_all:.1f} s in all; "
              f"outputs under {cfg.output_dir}", flush=True)
        report = report_verdict(cfg.output_dir / folder("16")) if "16" in {d.stage.id for d in decisions} else None
        if report:                  # the last line: the verdict and where to read the report
            print(f"== {report[0]} Report: {report[1]}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:       # between two stages: nothing half-written
        print("interrupted (Ctrl-C) between stages: every finished stage's outputs are kept, nothing else changed",
              file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
