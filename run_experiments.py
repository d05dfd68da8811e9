"""The results grid in one command:
``python run_experiments.py --config configs/results_uadfv.yaml [--grid cpu|gpu] [--smoke] [--force] [--set key=value ...]``.

Runs the whole pipeline (stages 02 to the last, sound protocol with four person-disjoint pools) for
every cell detector x person-split seed x score function x LR model of the config's ``experiments``
section, plus the paper's features under the ``paper`` and the sound protocol; a cell that is up to
date is skipped, an interrupted one restarts where the runner's stamps say. One progress line per
cell. Aggregates into ``<results_dir>/results.json`` (with every cell's test LR CSV under
``<results_dir>/cells/<cell>/``) and generates ``docs/results.md`` (see results_grid/__init__.py
for the design and results_grid/page.py for the page). ``--aggregate-only`` skips running and
only re-reads the run folders. The dataset root comes from ``$UADFV_ROOT`` when set, else from
``experiments.dataset_root`` (default ``../shared/data/UADFV``, relative to the repository root).
Exit code: 0 done, 2 bad config, otherwise the failing cell's runner exit code.
"""
from __future__ import annotations

import argparse
import sys
import time

from common.config import ConfigError
from common.io import InputError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--config", default="configs/results_uadfv.yaml", help="results config with an experiments section")
    p.add_argument("--grid", default=None, help="grid name from experiments.grids (cpu, gpu); default experiments.grid")
    p.add_argument("--smoke", action="store_true", help="the tiny grid of experiments.smoke (CI)")
    p.add_argument("--force", action="store_true", help="run every stage of every cell, up to date or not")
    p.add_argument("--dry-run", action="store_true", help="load and plan every cell, say what would run; run nothing")
    p.add_argument("--aggregate-only", action="store_true", help="do not run anything; aggregate what is there")
    p.add_argument("--reuse-upstream", action="store_true",
                   help="never re-run a cell's split, training or feature dump, even when out of date (listed in "
                        "results.json); with --force, re-run every cell's LR stages only")
    p.add_argument("--keep-going", action="store_true", help="after a failed cell, go on with the others")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the results config, e.g. --set experiments.seeds=[0]")
    args = p.parse_args(argv)
    from common.io import read_json
    from results_grid.aggregate import aggregate, write_outputs
    from results_grid.cells import Grid, _rel, planned_cells
    from results_grid.config import read_experiments
    from results_grid.runner import run_grid
    try:
        ex = read_experiments(args.config, args.overrides, grid=args.grid, smoke=args.smoke)
        t0 = time.time()
        if args.aggregate_only:
            grid = Grid(ex)
            cells = planned_cells(ex)
            timing_path = ex.work_dir / "timing.json"
            timing = read_json(timing_path) if timing_path.is_file() else {}
            results = aggregate(ex, cells, grid, timing, 0.0)
        elif args.dry_run:
            run_grid(ex, force=args.force, dry_run=True, reuse_upstream=args.reuse_upstream)
            return 0
        else:
            results = run_grid(ex, force=args.force, keep_going=args.keep_going, reuse_upstream=args.reuse_upstream)
        rj, docs = write_outputs(ex, results)
    except (ConfigError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = len(results["cells"])
    print(f"== {n} cell-level entries aggregated in {time.time() - t0:.1f} s: {_rel(rj)}, {_rel(docs)}"
          + (f"; {len(results['missing_cells'])} cell(s) without figures" if results["missing_cells"] else ""))
    return 1 if results.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
