"""What a run leaves beside its outputs: the resolved config and each stage's console log; Ctrl-C.

- ``<output_dir>/resolved_config.txt``: the config as the last stage (or the runner) resolved it, in
  ``--print-config`` form (every value with its origin: default / file / base file / --set);
- ``<output_dir>/logs/<stage folder>.log``: everything the stage's last run printed (stdout and
  stderr through Python, tracebacks included), also when it failed;
- one Ctrl-C ends a stage with one line and exit code 130 (:data:`EXIT_INTERRUPTED`); a second Ctrl-C
  during the clean-up is ignored, so the work folder is removed (or kept, for a resumable stage)
  without a traceback.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Iterator

EXIT_INTERRUPTED = 130     # 128 + SIGINT, the shell's convention
CONFIG_FILE = "resolved_config.txt"
LOG_DIR = "logs"


class Tee:
    """A text stream that writes to ``stream`` and to an open log file; terminal behaviour (isatty,
    fileno, encoding) is that of ``stream``, so progress bars look as they would without it. The log
    gets whole lines only: a line redrawn with carriage returns (a progress bar) is logged as it was
    last drawn before its newline; a bar that erases itself leaves nothing."""

    def __init__(self, stream, log):
        self._stream, self._log = stream, log
        self._line = ""

    def write(self, text: str) -> int:
        n = self._stream.write(text)
        parts = (self._line + text).split("\n")
        self._line = parts.pop().rsplit("\r", 1)[-1]
        try:
            for ln in parts:
                self._log.write(ln.rstrip("\r").rsplit("\r", 1)[-1] + "\n")
        except (ValueError, OSError):     # the log was closed or its disk is full: the console goes on
            pass
        return n

    def close_line(self) -> None:
        """Log an unfinished last line."""
        if self._line.strip():
            with contextlib.suppress(ValueError, OSError):
                self._log.write(self._line + "\n")
        self._line = ""

    def flush(self) -> None:
        self._stream.flush()
        with contextlib.suppress(ValueError, OSError):
            self._log.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def write_resolved_config(cfg) -> Path:
    """``<output_dir>/resolved_config.txt`` (``--print-config`` form, with origins)."""
    from .config import describe_config
    from .io import atomic_path

    path = Path(cfg.output_dir) / CONFIG_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(describe_config(cfg) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def console_log(path: Path, title: str) -> Iterator[Path]:
    """Copy ``sys.stdout`` and ``sys.stderr`` into ``path`` (replaced) while the block runs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out, err = sys.stdout, sys.stderr
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (out, err)]
    with open(path, "w", encoding="utf-8", errors="replace") as log:
        log.write(f"# {title}; started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
        sys.stdout, sys.stderr = Tee(out, log), Tee(err, log)
        old = [h.setStream(sys.stdout if h.stream is out else sys.stderr) for h in handlers]
        try:
            yield path
        except BaseException as exc:
            if not isinstance(exc, (SystemExit, KeyboardInterrupt)):    # the traceback the console gets next
                log.write(traceback.format_exc())
            raise
        finally:
            for h, s in zip(handlers, old):
                h.setStream(s)
            for t in (sys.stdout, sys.stderr):
                if isinstance(t, Tee):
                    t.close_line()
            sys.stdout, sys.stderr = out, err


def _interrupted(signum, frame):
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # one Ctrl-C is enough: the clean-up runs undisturbed
    raise KeyboardInterrupt


@contextlib.contextmanager
def one_interrupt() -> Iterator[None]:
    """The first SIGINT raises KeyboardInterrupt, later ones are ignored; the old handler comes back after."""
    try:
        old = signal.signal(signal.SIGINT, _interrupted)
    except ValueError:            # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
