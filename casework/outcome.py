"""Exit codes of the casework command (documented in the README and ``evidence.py``)."""
from __future__ import annotations

EXIT_OK = 0               # an LR was given for at least one face (every face inside its conditions, or the override)
EXIT_CONFIG = 2           # bad config or arguments, missing or tampered run outputs (LR system, checkpoint)
EXIT_NO_FACE = 3          # no face found: a statement, no number
EXIT_OUTSIDE = 4          # a face lies outside the validated conditions: no LR given for it (no override)
EXIT_BAD_INPUT = 5        # the questioned path is not a usable file: missing, unreadable, folder, empty, not an image/video
EXIT_CASE_CONFLICT = 6    # the case folder exists and belongs to another input
EXIT_UNVALIDATED = 7      # the LR system failed validation or is degenerate: no LR given (no override)
EXIT_INTERRUPTED = 130    # Ctrl-C: nothing written

EXIT_CODES = {
    EXIT_OK: "LR given (at least one face)",
    EXIT_CONFIG: "bad config/arguments or missing/tampered run outputs",
    EXIT_NO_FACE: "no face found: no LR",
    EXIT_OUTSIDE: "outside the validated conditions: no LR given",
    EXIT_BAD_INPUT: "input not usable (missing, unreadable, folder, zero bytes, not an image or video)",
    EXIT_CASE_CONFLICT: "case folder belongs to another input",
    EXIT_UNVALIDATED: "the LR system failed validation or is degenerate: no LR given "
                      "(--allow-unvalidated-system overrides)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C): nothing written",
}


class CaseworkError(Exception):
    """An outcome that ends the command with ``code`` and one line (no traceback)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = int(code)
