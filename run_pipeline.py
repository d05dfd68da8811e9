"""Run the numbered stages for one config, in order: ``python run_pipeline.py --config FILE
[--from NN] [--to NN] [--set key=value ...]``. Each stage runs as its own process with the same
config and overrides, exactly as if it were started by hand."""
from __future__ import annotations

import subprocess
import sys
import time

from common.cli import stage_parser
from common.config import REPO_ROOT, load_config
from common.stages import STAGES


def main(argv=None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--from", dest="first", type=int, default=STAGES[0].number, help="first stage number")
    parser.add_argument("--to", dest="last", type=int, default=STAGES[-1].number, help="last stage number")
    args = parser.parse_args(argv)
    load_config(args.config, args.overrides)  # fail early on a bad config
    overrides = [a for o in args.overrides for a in ("--set", o)]
    for stage in STAGES:
        if not args.first <= stage.number <= args.last:
            continue
        print(f"== stage {stage.name} ({stage.script})", flush=True)
        t0 = time.time()
        rc = subprocess.call([sys.executable, str(REPO_ROOT / stage.script), "--config", args.config, *overrides])
        if rc != 0:
            print(f"== stage {stage.name} failed (exit {rc}); later stages not run", file=sys.stderr)
            return rc
        print(f"== stage {stage.name} done in {time.time() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
