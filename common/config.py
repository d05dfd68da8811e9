"""Experiment configuration: one YAML file per experiment, nothing else holds paths.

A config is a nested mapping. Keys are addressed with dots (``slr.protocol``). String values may
refer to other keys as ``${key}`` (for example ``${output_dir}/01_faces``); references are resolved
after ``--set key=value`` overrides are applied, so overriding ``output_dir`` moves every path
derived from it. Relative paths are resolved against the repository root, so scripts behave the
same from any working directory.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
_REF = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_MISSING = object()


class ConfigError(ValueError):
    """A config key is missing or has a bad value; the message names the key and the file."""


class Config:
    """Read-only view of a nested config mapping with dotted-key access."""

    def __init__(self, data: dict, source: str = "<dict>"):
        self.data = data
        self.source = source

    def get(self, key: str, default: Any = _MISSING) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is _MISSING:
                    raise ConfigError(f"{self.source}: config key '{key}' is missing; add it to the config "
                                      f"or pass --set {key}=VALUE")
                return default
            node = node[part]
        return node

    def require(self, key: str, types: type | tuple = object) -> Any:
        """Value of ``key``; a clear error if it is missing, null or of the wrong type."""
        value = self.get(key)
        if value is None or not isinstance(value, types):
            want = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{self.source}: config key '{key}' must be a {want}, got {value!r}")
        return value

    def path(self, key: str, default: Any = _MISSING) -> Path | None:
        """A path-valued key, absolute (relative values are taken from the repository root)."""
        value = self.get(key, default)
        if value is None:
            return None
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else REPO_ROOT / p

    def section(self, key: str) -> dict:
        value = self.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.source}: config key '{key}' must be a mapping, got {value!r}")
        return value

    @property
    def output_dir(self) -> Path:
        return self.path("output_dir")

    def stage_dir(self, stage: str, create: bool = True) -> Path:
        """``<output_dir>/<stage>``, for example ``stage_dir('08_scores')``."""
        d = self.output_dir / stage
        if create:
            d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def seed(self) -> int:
        return int(self.require("seed", int))

    def fingerprint(self, keys: Iterable[str]) -> str:
        """Stable hash of the values of ``keys`` (missing keys hash as null): a stage's config identity."""
        blob = json.dumps({k: self.get(k, None) for k in sorted(keys)}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return copy.deepcopy(self.data)


def _parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars/lists: ``3``, ``0.5``, ``true``, ``null``, ``[1, 2]``, ``abc``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_override(data: dict, assignment: str, source: str = "--set") -> None:
    if "=" not in assignment:
        raise ConfigError(f"{source}: override '{assignment}' must look like key=value")
    key, text = assignment.split("=", 1)
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: cannot set '{key}': '{part}' is not a mapping")
        node = child
    node[parts[-1]] = _parse_value(text)


def _resolve_refs(data: dict, source: str) -> dict:
    root = Config(data, source)

    def resolve(value: Any, chain: tuple) -> Any:
        if isinstance(value, dict):
            return {k: resolve(v, chain) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, chain) for v in value]
        if not isinstance(value, str) or "${" not in value:
            return value

        def lookup(key: str) -> Any:
            if key in chain:
                raise ConfigError(f"{source}: circular reference through '{key}'")
            return resolve(root.get(key), chain + (key,))

        whole = _REF.fullmatch(value)
        if whole:  # a bare reference keeps the referenced value's type
            return lookup(whole.group(1))
        return _REF.sub(lambda m: str(lookup(m.group(1))), value)

    return resolve(data, ())


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Load a YAML config, apply ``key=value`` overrides, resolve ``${key}`` references."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist; pass --config configs/<name>.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    for assignment in overrides:
        apply_override(data, assignment)
    return Config(_resolve_refs(data, str(path)), str(path))
