"""Chain of custody: hashes, code version, time, command line; the case folder that never overwrites.

Case folder: ``<evidence.output>/<input name>_<first 12 hex digits of the input's SHA-256>`` (or
``--case-id``). A folder that exists and holds another input's ``evidence.json`` (or no
``evidence.json`` at all) is an error (exit 6); the same input again replaces the folder with an
identical one (only the time differs) and the command says it was re-run.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from common.io import sha256_file

from .outcome import EXIT_CASE_CONFLICT, CaseworkError

REPO = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """``git describe --always --dirty --tags`` of the checkout; else the installed package version."""
    try:
        p = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=REPO, capture_output=True,
                           text=True, timeout=10)
        if p.returncode == 0 and p.stdout.strip():
            return f"git {p.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return f"package {version('deepfake-slr')}"
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover
        pass
    return "unknown (no git checkout, package not installed)"


def config_sha256(cfg) -> str:
    """SHA-256 of the resolved config (after ${...} references and --set overrides), canonical JSON."""
    text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path | None) -> str | None:
    return sha256_file(Path(path)) if path is not None and Path(path).is_file() else None


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def command_line(argv=None) -> str:
    argv = list(sys.argv if argv is None else argv)
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *argv])


def _safe(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "input"
    return s[:80]


def case_folder(root: Path, input_path: Path, sha256: str, case_id: str | None = None) -> Path:
    if case_id is not None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", case_id):
            raise CaseworkError(2, f"--case-id {case_id!r}: use letters, digits, '.', '_' or '-' (no '/')")
        return Path(root) / case_id
    return Path(root) / f"{_safe(input_path.name)}_{sha256[:12]}"


def check_case_folder(folder: Path, sha256: str) -> str | None:
    """None for a new case; the earlier run's UTC time when ``folder`` holds this input's case already.
    CaseworkError(6) when it holds something else."""
    if not folder.exists():
        return None
    ev = folder / "evidence.json"
    if not ev.is_file():
        raise CaseworkError(EXIT_CASE_CONFLICT, f"{folder}: exists and is not a case folder (no evidence.json); "
                                                f"choose another --case-id or --output")
    try:
        old = json.loads(ev.read_text())
        old_sha = old["input"]["sha256"]
    except (ValueError, KeyError, TypeError):
        raise CaseworkError(EXIT_CASE_CONFLICT, f"{ev}: unreadable case record; choose another --case-id or "
                                                f"--output (the folder is left as it is)") from None
    if old_sha != sha256:
        raise CaseworkError(EXIT_CASE_CONFLICT, f"{folder}: holds the case of another input (SHA-256 "
                                                f"{old_sha[:12]}..., {old['input'].get('path')}); this input is "
                                                f"{sha256[:12]}...: choose another --case-id (nothing was written)")
    return str(old.get("created_utc", "?"))
