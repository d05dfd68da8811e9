"""The command line shared by every numbered script: ``--config FILE`` and ``--set key=value``."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from .config import Config, ConfigError, load_config
from .io import InputError

DEFAULT_CONFIG = "configs/demo.yaml"


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0] if description else None)
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"experiment config (default {DEFAULT_CONFIG})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set slr.protocol=paper (repeatable)")
    return p


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def run_stage(main: Callable[[Config, "argparse.Namespace"], object], description: str | None,
              argv: Sequence[str] | None = None,
              extra_args: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Parse the common arguments (plus a script's own), load the config, run ``main(cfg, args)``.

    Configuration and input errors end the run with exit code 2 and a one-line message instead of a
    traceback: they are the user's to fix, and the message says how.
    """
    parser = stage_parser(description)
    if extra_args:
        extra_args(parser)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(args.config, args.overrides)
        main(cfg, args)
    except (ConfigError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
