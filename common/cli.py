"""The command line shared by every numbered script, and the one way a stage writes its outputs.

Every script: ``--config FILE`` (default ``configs/demo.yaml``, said so in the log when used),
``--set key=value`` (repeatable) and ``--print-config`` (print the resolved config with each value's
origin, run nothing). A stage script is ``main(cfg, args, out)`` started by
``run_stage(main, __doc__, stage="05")``: ``out`` is the stage's work folder; whatever ``main``
writes there replaces ``<output_dir>/<folder>`` only when ``main`` returns normally (see
``stage_output``). ``main`` returns ``KEEP_PREVIOUS`` when it wrote its results elsewhere on purpose
(stage 01 with ``--output``/``--shard``): the work folder is then discarded, the stage folder kept.
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .config import Config, ConfigError, config_banner, describe_config, load_config
from .console import EXIT_INTERRUPTED
from .io import InputError, replace_dir

DEFAULT_CONFIG = "configs/demo.yaml"
KEEP_PREVIOUS = object()     # returned by a stage's main: nothing to publish, keep the stage folder
log = logging.getLogger("stage")


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0] if description else None)
    p.add_argument("--config", default=None, help=f"experiment config (default {DEFAULT_CONFIG}, said in the log)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set slr.protocol=paper (repeatable; keys: common/schema.py)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config with each value's origin (default / file / base file / --set) and exit")
    return p


def load_or_print_config(args) -> "Config | int":
    """The config of ``--config`` / ``--set``; or the exit code when it is bad (2, said in one line) or
    when ``--print-config`` asked only for it (0, printed)."""
    try:
        cfg = load_config(config_path(args), args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(describe_config(cfg))
        return 0
    return cfg


def config_path(args: argparse.Namespace) -> str:
    """``args.config``, or the default config with a log line saying it is used."""
    if args.config:
        return args.config
    print(f"note: no --config given: using {DEFAULT_CONFIG}", file=sys.stderr, flush=True)
    return DEFAULT_CONFIG


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _is_main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class FailedAfterOutputs(InputError):
    """Raised by a stage whose outputs are complete and worth reading although the stage fails (stage 05
    found NaN values): the work folder is published first, then the stage exits 2 without a stamp."""


class _Discard(Exception):
    """Internal: main returned KEEP_PREVIOUS; the work folder is dropped, the stage folder kept."""


@contextlib.contextmanager
def stage_output(cfg: Config, stage_id: str) -> Iterator[Path]:
    """The stage's work folder ``<output_dir>/.<folder>.work``; on success it replaces the stage folder.

    - a failure (any exception) leaves ``<output_dir>/<folder>`` exactly as it was;
    - a non-resumable stage starts from an empty work folder, and a failed one's is removed;
    - a resumable stage (table: ``resumable=True``, stages 01 and 03) keeps its work folder after a
      failure and the next run continues in it; what it may reuse from the published folder is its own
      decision (stage 01: videos whose source fingerprint is unchanged; stage 03: a matching last.pt).
    Under torchrun only rank 0 publishes.
    """
    from .stages import get, stage_dir, work_dir

    stage = get(stage_id)
    final = stage_dir(cfg, stage.id)
    work = work_dir(final)
    main_rank = _is_main_rank()
    if main_rank and not stage.resumable:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    except FailedAfterOutputs:
        if main_rank:
            replace_dir(work, final)
        raise
    except _Discard:
        if main_rank and not stage.resumable:
            shutil.rmtree(work, ignore_errors=True)
        elif main_rank and not any(work.iterdir()):
            work.rmdir()
        raise
    except BaseException as exc:
        if main_rank and not stage.resumable:
            shutil.rmtree(work, ignore_errors=True)
        elif main_rank and not isinstance(exc, KeyboardInterrupt):     # Ctrl-C: run_stage says it in one line
            print(f"stage {stage.folder}: failed; its work folder {work} is kept for resuming, "
                  f"{final} is unchanged", file=sys.stderr)
        raise
    if main_rank:
        replace_dir(work, final)


def run_stage(main: Callable, description: str | None, argv: Sequence[str] | None = None,
              extra_args: Callable[[argparse.ArgumentParser], None] | None = None, stage: str | None = None) -> int:
    """Parse the common arguments (plus a script's own), load the config, run the stage.

    ``stage`` is the stage id of the table (``"05"``); with it, ``main(cfg, args, out)`` writes into the
    work folder ``out`` (see ``stage_output``), the resolved config goes to
    ``<output_dir>/resolved_config.txt`` and the console to ``<output_dir>/logs/<folder>.log``
    (``common.console``). Without it (commands that are not stages), ``main(cfg, args)``.
    Configuration and input errors end the run with exit code 2 and a one-line message instead of a
    traceback: they are the user's to fix, and the message says how. Ctrl-C ends it with one line
    (where the work folder is, that earlier outputs are unchanged) and exit code 130.
    """
    from .console import LOG_DIR, console_log, one_interrupt, write_resolved_config

    parser = stage_parser(description)
    if extra_args:
        extra_args(parser)
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_or_print_config(args)
    if not isinstance(cfg, Config):
        return cfg
    if stage is None or not _is_main_rank():
        return _run_main(main, cfg, args, stage)
    from .stages import get
    name = get(stage).folder
    with console_log(Path(cfg.output_dir) / LOG_DIR / f"{name}.log", f"stage {name}: {' '.join(sys.argv)}"), \
            one_interrupt():
        write_resolved_config(cfg)
        return _run_main(main, cfg, args, stage)


def _interrupted_line(cfg: Config, stage: str | None) -> str:
    if stage is None:
        return "interrupted (Ctrl-C)"
    from .stages import get, stage_dir, work_dir
    st = get(stage)
    final = stage_dir(cfg, stage)
    work = work_dir(final)
    kept = (f"its work folder {work} is kept for resuming" if st.resumable and work.exists() else
            f"its work folder {work} was removed")
    return f"interrupted (Ctrl-C): stage {st.folder} stopped; {kept}; {final} and every earlier output are unchanged"


def _run_main(main: Callable, cfg: Config, args: argparse.Namespace, stage: str | None) -> int:
    try:
        log.info("%s%s", f"stage {stage}: " if stage else "", config_banner(cfg))
        takes_out = len(inspect.signature(main).parameters) >= 3
        if stage is None or not takes_out:
            main(cfg, args)
        else:
            from .stages import get, stage_dir
            folder = get(stage).folder
            with stage_output(cfg, stage) as out:
                result = main(cfg, args, out)
                if result is KEEP_PREVIOUS:
                    raise _Discard()
            print(f"stage {folder}: outputs in {stage_dir(cfg, stage)}")
    except _Discard:
        return 0
    except (ConfigError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_interrupted_line(cfg, stage), file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def in_work(path: Path, final: Path, work: Path) -> Path:
    """``path`` moved into the work folder if it lies inside the stage's final folder, else unchanged.

    A stage whose configured output file (``split.file``, ``fidelity.cache_file``) defaults to a place
    inside its own folder writes it into the work folder, so it is published with the rest.
    """
    path, final = Path(path), Path(final)
    try:
        rel = path.resolve().relative_to(final.resolve())
    except ValueError:
        return path
    return Path(work) / rel


def call_main(script, cfg: Config, args: argparse.Namespace | None = None, stage: str | None = None):
    """Run a stage script's ``main`` in-process through the same work-folder mechanism as ``run_stage``
    (tests, notebooks). ``script``: the loaded script module (its stage is found by its path in the
    stage table) or a ``main`` function together with ``stage``."""
    from .stages import stage_of_script

    main = getattr(script, "main", script)
    if stage is None:
        found = stage_of_script(getattr(script, "__file__", ""))
        if found is None:
            raise ValueError(f"{script!r} is not a script of the stage table; pass stage=")
        stage = found.id
    if len(inspect.signature(main).parameters) < 3:
        return main(cfg, args)
    try:
        with stage_output(cfg, stage) as out:
            result = main(cfg, args, out)
            if result is KEEP_PREVIOUS:
                raise _Discard()
    except _Discard:
        return KEEP_PREVIOUS
    return result
