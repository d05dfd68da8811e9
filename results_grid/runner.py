"""Running the grid: each cell's upstream and cell stage ranges through the pipeline's runner, resumable."""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from common.config import REPO_ROOT, Config, load_config
from common.io import InputError, read_json, write_json
from results_grid.aggregate import REUSED_FILE, aggregate
from results_grid.cells import Cell, Grid, _rel, _sid, _stage_table, planned_cells, split_table, stage_prefix
from results_grid.config import ABORT_ENV, Experiments
from results_grid.readback import read_cell


def _plan_needs_run(cfg: Config, stages: list, table) -> tuple[bool, str]:
    from common.pipeline import plan
    if not stages:
        return False, ""
    decisions, _ = plan(cfg, _sid(stages[0]), _sid(stages[-1]), False, table)
    wanted = {s.name for s in stages}
    for d in decisions:
        if d.stage.name in wanted and d.run:
            return True, f"{d.stage.name}: {d.reason}"
    return False, "up to date"


def _first_to_run(cfg: Config, stages: list, table) -> tuple[str, str] | None:
    """(stage name, reason) of the first stage of ``stages`` that must run, or None. The plan uses the
    table reduced to ``stages`` (a feature-file run has no stages 03-07 to wait for)."""
    from common.pipeline import plan
    sub = tuple(s for s in table if s.name in {x.name for x in stages})
    decisions, _ = plan(cfg, _sid(stages[0]), _sid(stages[-1]), False, sub)
    wanted = {s.name for s in stages}
    for d in decisions:
        if d.stage.name in wanted and d.run:
            return d.stage.name, d.reason
    return None


def _run_range(conf: str, overrides: list[str], stages: list, force: bool, log) -> int:
    """run_pipeline.py over ``stages`` (contiguous in the table) as a child process (its own output)."""
    import subprocess
    if not stages:
        return 0
    args = [sys.executable, str(REPO_ROOT / "run_pipeline.py"), "--config", str(REPO_ROOT / conf),
            "--from", stage_prefix(stages[0]), "--to", stage_prefix(stages[-1])]
    if force:
        args.append("--force")
    for o in overrides:
        args += ["--set", o]
    log.write(f"$ {' '.join(args)}\n")
    log.flush()
    return subprocess.call(args, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)


def link_upstream(cell_dir: Path, up_dir: Path, before: list) -> None:
    """Relative symbolic links ``cell_dir/<stage> -> ../upstream/<stage>`` for every upstream stage, made
    before the upstream runs (so some may dangle until it has; a disabled stage's link always dangles,
    which reads as "missing", as no folder would)."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    for st in before:
        link, target = cell_dir / st.name, up_dir / st.name
        rel = os.path.relpath(target, cell_dir)
        if link.is_symlink():
            if os.readlink(link) == rel:
                continue
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        os.symlink(rel, link, target_is_directory=True)


def _abort_hook(cell: Cell, stages: list) -> list:
    """The stages to run before the test hook kills the process (all of them when no hook is set)."""
    spec = os.environ.get(ABORT_ENV, "")
    if "@" not in spec:
        return stages
    name, prefix = spec.rsplit("@", 1)
    if name != cell.name:
        return stages
    names = [stage_prefix(s) for s in stages]
    if prefix not in names:
        return stages
    return stages[: names.index(prefix) + 1]


def _plan_cell(grid: Grid, cell: Cell, table) -> dict:
    """A cell's configs (upstream and cell), its folder, and the stages each range comprises."""
    if cell.group == "fusion":               # no upstream of its own: its members' (cells.Grid.fusion_overrides)
        conf, ov = grid.fusion_overrides(cell)
        cfg = load_config(REPO_ROOT / conf, ov)
        return {"conf": conf, "up_ov": [], "up_cfg": cfg, "cell_ov": ov, "before": [],
                "after": split_table(table, False)[1], "cell_cfg": cfg, "dir": grid.cell_dir(cell)}
    det = grid.detectors[cell.detector]
    before, after = split_table(table, det.features_file is not None)
    conf, up_ov = grid.upstream_overrides(cell)
    up_cfg = load_config(REPO_ROOT / conf, up_ov)
    conf, cell_ov = grid.cell_overrides(cell, up_cfg, before)
    return {"conf": conf, "up_ov": up_ov, "up_cfg": up_cfg, "cell_ov": cell_ov, "before": before, "after": after,
            "cell_cfg": load_config(REPO_ROOT / conf, cell_ov), "dir": grid.cell_dir(cell)}


def _needs_run(c: dict, table, dry_run: bool) -> tuple[bool, bool, str]:
    """(upstream must run, cell must run, why). A dry run plans each range on its own; a real run makes
    one plan over the whole range, the upstream stages seen through the cell's links."""
    if dry_run:
        run_up, why_up = _plan_needs_run(c["up_cfg"], c["before"], table)
        run_cell, why_cell = _plan_needs_run(c["cell_cfg"], c["after"], table)
        return run_up, run_cell, why_up if run_up else why_cell
    first = _first_to_run(c["cell_cfg"], c["before"] + c["after"], table)
    run_up = first is not None and first[0] in {s.name for s in c["before"]}
    return run_up, first is not None, f"{first[0]}: {first[1]}" if first else ""


def _run_cell(cell: Cell, c: dict, run_up: bool, force: bool, head: str, out) -> tuple[int, float]:
    """Run the cell's upstream range (when due) and its own range; (exit status, seconds)."""
    t0 = time.time()
    log_path = c["dir"] / "experiment.log"
    with open(log_path, "a") as log:
        rc = _run_range(c["conf"], c["up_ov"], c["before"], force, log) if run_up else 0
        if rc == 0:
            stages = _abort_hook(cell, c["after"])
            rc = _run_range(c["conf"], c["cell_ov"], stages, force, log)
            if rc == 0 and len(stages) < len(c["after"]):
                log.write(f"{ABORT_ENV}: aborting after stage {stage_prefix(stages[-1])}\n")
                log.flush()
                os._exit(137)
    if rc != 0:
        print(f"{head}: FAILED (exit {rc}); log: {_rel(log_path)}", file=out, flush=True)
        tail = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()][-4:]
        print("\n".join(f"    {ln}" for ln in tail), file=sys.stderr, flush=True)
    return rc, time.time() - t0


def _keep_upstream(cell: Cell, c: dict, table) -> str | None:
    """``--reuse-upstream``: the upstream range is not run. None when it is up to date, else why it is
    not (recorded in results.json). Refuses a cell whose upstream stages never finished."""
    from common.pipeline import is_enabled, read_stamp
    missing = [st.name for st in c["before"] if is_enabled(st, c["up_cfg"]) and read_stamp(c["up_cfg"], st) is None]
    if missing:
        raise InputError(f"{cell.name}: --reuse-upstream, but upstream stage {missing[0]} never finished under "
                         f"{_rel(c['up_cfg'].path('output_dir'))}; run the grid without --reuse-upstream")
    run_up, why = _plan_needs_run(c["up_cfg"], c["before"], table)
    return why if run_up else None


def _decide(cell: Cell, c: dict, table, dry_run: bool, reuse_upstream: bool, reused: dict,
            reused_path: Path) -> tuple[bool, bool, str]:
    """(upstream must run, cell must run, why), keeping ``reused`` (the cells whose stale upstream
    ``--reuse-upstream`` kept) and its file up to date."""
    if reuse_upstream:
        stale = _keep_upstream(cell, c, table)
        if stale and not dry_run:
            reused[cell.name] = stale
            write_json(reused_path, reused)
        run_cell, why = _plan_needs_run(c["cell_cfg"], c["after"], table)
        return False, run_cell, why
    run_up, run_cell, why = _needs_run(c, table, dry_run)
    if run_up and not dry_run and reused.pop(cell.name, None):
        write_json(reused_path, reused)            # its upstream runs now: no longer reused
    return run_up, run_cell, why


def run_grid(ex: Experiments, force: bool = False, out=sys.stdout, keep_going: bool = False,
             dry_run: bool = False, reuse_upstream: bool = False) -> dict | None:
    """Run (or skip, when up to date) every cell, then aggregate. Returns results.json's content
    (``None`` with ``dry_run``: every cell's configs are loaded and planned, nothing runs).

    ``reuse_upstream``: never run a cell's upstream range (split, training, dumps), even when its
    stamps are out of date; ``force`` then re-runs the cell ranges only. For re-running the LR stages
    after a code change without retraining; each cell whose upstream plan said "run" is listed in
    results.json (``upstream_reused``) with the reason."""
    table = _stage_table()
    grid = Grid(ex)
    cells = planned_cells(ex)
    t_all = time.time()
    if not dry_run:
        ex.work_dir.mkdir(parents=True, exist_ok=True)
    timing_path = ex.work_dir / "timing.json"
    timing = read_json(timing_path) if timing_path.is_file() else {}
    failures = []
    reused_path = ex.work_dir / REUSED_FILE
    reused = read_json(reused_path) if reused_path.is_file() else {}
    for i, cell in enumerate(cells, 1):
        c = _plan_cell(grid, cell, table)
        if not dry_run:
            link_upstream(c["dir"], grid.upstream_dir(cell), c["before"])
        run_up, run_cell, why = _decide(cell, c, table, dry_run, reuse_upstream, reused, reused_path)
        head = f"[{i}/{len(cells)}] {cell.name}"
        if dry_run:
            state = f"would run ({why})" if (force or run_up or run_cell) else "up to date"
            print(f"{head}: {state} -> {_rel(c['dir'])} [{c['conf']}, device {c['cell_cfg'].get('device')}]",
                  file=out, flush=True)
            continue
        if not (force or run_up or run_cell):
            print(f"{head}: up to date, skipped ({_rel(c['dir'])})", file=out, flush=True)
            continue
        print(f"{head}: runs ({why}) -> {_rel(c['dir'])}", file=out, flush=True)
        if cell.name in reused:
            print(f"{head}: upstream kept as it is (--reuse-upstream), although {reused[cell.name]}", file=out, flush=True)
        rc, seconds = _run_cell(cell, c, run_up or (force and not reuse_upstream), force, head, out)
        if rc != 0:
            failures.append(f"{head}: FAILED (exit {rc}); log: {_rel(c['dir'] / 'experiment.log')}")
            if not keep_going:
                raise SystemExit(rc)
            continue
        timing[cell.name] = round(seconds, 1)
        write_json(timing_path, timing)
        rec = read_cell(c["dir"], "frame")
        brief = (f"test Cllr {rec['test']['cllr']:.3g}, AUC {rec['test']['auc']:.3g}" if rec else "no test figures")
        print(f"{head}: done in {seconds:.1f} s ({brief})", file=out, flush=True)
    if dry_run:
        return None
    results = aggregate(ex, cells, grid, timing, time.time() - t_all)
    if failures:
        results["failures"] = failures
    return results
