"""Experiment configuration: one YAML file per experiment, checked against one schema.

A config is a nested mapping. Keys are addressed with dots (``slr.protocol``); every key is declared
once in ``common/schema.py`` (type, default, allowed values, meaning). Loading a config

1. reads the file and, if it says ``base: other.yaml`` (relative to the file's folder), the base
   file first; the file's values override the base's (sections merge key by key);
2. applies ``--set key=value`` overrides;
3. refuses an unknown key (naming the file or ``--set`` and the closest valid key);
4. fills every key not set with its schema default;
5. resolves ``${key}`` references (``${stage:10}`` = ``<output_dir>/10_kde_lr`` from the stage table)
   after the overrides, so overriding ``output_dir`` moves every path derived from it;
6. checks every value's type, allowed values and range (a ConfigError names key, file and fix).

``Config.origin(key)`` says where a value came from (``default``, ``file <path>``, ``base <path>``,
``--set``); ``describe_config(cfg)`` prints the resolved config with origins
(``run_pipeline.py --print-config``). Relative paths are resolved against the repository root, so
scripts behave the same from any working directory.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import schema

REPO_ROOT = Path(__file__).resolve().parents[1]
_REF = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")
_MISSING = object()
_ABSENT = object()


class ConfigError(ValueError):
    """A config key is missing or has a bad value; the message names the key and the file."""


def _declared(key: str) -> bool:
    """A declared key, a section of declared keys, or a key inside a declared mapping-valued key."""
    if key in schema.BY_NAME or key in schema.SECTIONS:
        return True
    parts = key.split(".")
    return any(".".join(parts[:i]) in schema.BY_NAME and "map" in schema.BY_NAME[".".join(parts[:i])].types
               for i in range(1, len(parts)))


def _has_default(key: str) -> bool:
    k = schema.BY_NAME.get(key)
    return k is not None and k.default is not schema.UNSET


class Config:
    """Read-only view of a nested config mapping with dotted-key access.

    ``Config(data)`` wraps any mapping (tests, tools); a Config from ``load_config`` is *strict*:
    reading a key that ``common/schema.py`` does not declare is a ConfigError (a typo in code is
    caught as surely as one in a config file). Defaults live in the schema only: ``get(key)`` of a
    declared key the mapping lacks returns the schema's default (its ``${key}`` references resolved
    in this config), so code never carries a second copy of a default.
    """

    def __init__(self, data: dict, source: str = "<dict>", origins: dict | None = None,
                 files: tuple = (), strict: bool = False):
        self.data = data
        self.source = source
        self.origins = origins or {}
        self.files = tuple(files)       # the config file, then its base file(s)
        self.strict = strict

    def get(self, key: str, default: Any = _MISSING) -> Any:
        if self.strict and not _declared(key):
            raise ConfigError(f"config key '{key}' is read by the code but not declared in common/schema.py"
                              f"{schema.did_you_mean(key)} (declare it there with its type and default)")
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is _MISSING and _has_default(key):
                    return self._schema_default(key)
                if default is _MISSING:
                    raise ConfigError(f"{self.source}: config key '{key}' is missing; add it to the config "
                                      f"or pass --set {key}=VALUE")
                return default
            node = node[part]
        return node

    def _schema_default(self, key: str) -> Any:
        value = copy.deepcopy(schema.BY_NAME[key].default)
        if isinstance(value, str) and "${" in value:
            value = resolve_refs({**self.data, "__default__": value}, self.source)["__default__"]
        return value

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
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.source}: config key '{key}' must be a mapping, got {value!r}")
        return value

    def origin(self, key: str) -> str:
        """Where the value of ``key`` came from: ``default``, ``file <path>``, ``base <path>`` or ``--set``."""
        return self.origins.get(key, "default" if key in schema.BY_NAME else "?")

    @property
    def output_dir(self) -> Path:
        return self.path("output_dir")

    def stage_dir(self, stage: str, create: bool = True) -> Path:
        """``<output_dir>/<folder>`` of a stage, by id (``"10"``) or folder name (``"10_kde_lr"``)."""
        from .stages import BY_FOLDER, get
        name = stage if stage in BY_FOLDER else get(stage).folder
        d = self.output_dir / name
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


# ------------------------------------------------------------------------------------------- reading
def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars/lists: ``3``, ``0.5``, ``true``, ``null``, ``[1, 2]``, ``abc``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _walk_declared(value: Any, prefix: str, where: str, origins: dict, label: str) -> None:
    """Check that every key under ``prefix`` in ``value`` is declared; record the leaves' origin."""
    if prefix in schema.BY_NAME:
        origins[prefix] = label
        return
    if prefix and prefix not in schema.SECTIONS:
        raise ConfigError(f"{where}: unknown config key '{prefix}'{schema.did_you_mean(prefix)}")
    if value is None:
        return
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: config key '{prefix}' is a section and must be a mapping of keys, "
                          f"got {value!r}")
    for k, v in value.items():
        if not isinstance(k, str):
            raise ConfigError(f"{where}: config key {k!r} under '{prefix or '<top>'}' must be a string")
        _walk_declared(v, f"{prefix}.{k}" if prefix else k, where, origins, label)


def _merge(base: dict, top: dict, prefix: str = "") -> dict:
    """``top`` over ``base``: sections merge key by key; a declared key's value is replaced whole."""
    out = dict(base)
    for k, v in top.items():
        key = f"{prefix}.{k}" if prefix else k
        if key in schema.SECTIONS and key not in schema.BY_NAME and isinstance(v, dict) \
                and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v, key)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_yaml_mapping(path: Path) -> dict:
    """The YAML file ``path`` as a mapping (empty file = {}); a ConfigError names the file otherwise."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _read_file(path: Path, role: str, chain: tuple = ()) -> tuple[dict, dict, tuple]:
    """(data, origins, files) of ``path`` with its ``base`` chain merged in."""
    if not path.is_file():
        hint = f" (the 'base' of {chain[-1]})" if chain else "; pass --config configs/<name>.yaml"
        raise ConfigError(f"config file '{path}' does not exist{hint}")
    if path.resolve() in chain:
        raise ConfigError(f"{path}: circular 'base' chain: {' -> '.join(map(str, chain + (path.resolve(),)))}")
    data = read_yaml_mapping(path)
    base = data.pop("base", None)
    origins: dict = {}
    _walk_declared(data, "", str(path), origins, f"{role} {_show(path)}")
    files: tuple = (path,)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: 'base' must name a config file, got {base!r}")
        base_path = Path(base).expanduser()
        base_path = base_path if base_path.is_absolute() else path.parent / base_path
        bdata, borigins, bfiles = _read_file(base_path, "base", chain + (path.resolve(),))
        data = _merge(bdata, data)
        origins = {**borigins, **origins}
        files += bfiles
    return data, origins, files


def _show(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def parent_node(data: dict, key: str, source: str) -> dict:
    """The mapping that holds the last part of dotted ``key`` (missing levels created)."""
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: cannot set '{key}': '{'.'.join(parts[:i + 1])}' is not a mapping")
        node = child
    return node


def apply_override(data: dict, assignment: str, source: str = "--set", origins: dict | None = None) -> None:
    """Apply one ``key=value``; an undeclared key is a ConfigError naming the closest declared one."""
    if "=" not in assignment:
        raise ConfigError(f"{source}: override '{assignment}' must look like key=value")
    key, text = assignment.split("=", 1)
    key = key.strip()
    if not _declared(key):
        raise ConfigError(f"{source} {key}=...: unknown config key '{key}'{schema.did_you_mean(key)}")
    value = parse_value(text)
    node = parent_node(data, key, source)
    parts = key.split(".")
    if key in schema.SECTIONS and key not in schema.BY_NAME:       # a whole section: merge, check its keys
        if not isinstance(value, dict):
            raise ConfigError(f"{source} {key}=...: '{key}' is a section; give a mapping like {{key: value}}")
        sub: dict = {}
        _walk_declared(value, key, source, sub, "--set")
        node[parts[-1]] = _merge(node.get(parts[-1]) or {}, value, key)
        if origins is not None:
            origins.update(sub)
    else:
        node[parts[-1]] = value
        if origins is not None:
            top = next((".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in schema.BY_NAME),
                       key)
            origins[top] = "--set"


def _fill_defaults(data: dict, origins: dict) -> None:
    for k in schema.KEYS:
        if k.default is schema.UNSET or k.name == "base":
            continue
        node, parts = data, k.name.split(".")
        for p in parts[:-1]:
            if node.get(p) is None:
                node[p] = {}
            node = node[p]
        if parts[-1] not in node:
            node[parts[-1]] = copy.deepcopy(k.default)
            origins[k.name] = "default"


def resolve_refs(data: dict, source: str) -> dict:
    """``data`` with every ``${key}`` replaced by that key's value (a bare reference keeps the value's
    type; ``${stage:NN}`` = ``<output_dir>/<folder of stage NN>``); any nested mapping works."""
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
            if key.startswith("stage:"):
                from .stages import STAGES, get
                try:
                    name = get(key[len("stage:"):], STAGES).folder
                except KeyError as err:
                    raise ConfigError(f"{source}: reference '${{{key}}}': {err.args[0]}") from None
                return f"{resolve(root.get('output_dir'), chain + (key,))}/{name}"
            return resolve(root.get(key), chain + (key,))

        whole = _REF.fullmatch(value)
        if whole:  # a bare reference keeps the referenced value's type
            return lookup(whole.group(1))
        return _REF.sub(lambda m: str(lookup(m.group(1))), value)

    return resolve(data, ())


def _validate(data: dict, origins: dict, path: Path) -> None:
    view = Config(data)
    for k in schema.KEYS:
        if k.name == "base":
            continue
        value = view.get(k.name, _ABSENT)
        if value is _ABSENT:
            continue
        problem = schema.check_value(k, value)
        if problem:
            where = origins.get(k.name, "default")
            where = {"default": f"{_show(path)} (schema default in common/schema.py)",
                     "--set": f"{_show(path)} --set"}.get(where, where)
            raise ConfigError(f"{where}: config key '{k.name}' {problem}"
                              + (f" (meaning: {k.help})" if k.help else ""))


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Load a YAML config (and its ``base``), apply ``key=value`` overrides, check every key against the
    schema, fill the defaults, resolve ``${key}`` references and check every value."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    data, origins, files = _read_file(path, "file")
    for assignment in overrides:
        apply_override(data, assignment, source=f"{_show(path)} --set", origins=origins)
    _fill_defaults(data, origins)
    resolved = resolve_refs(data, str(path))
    _validate(resolved, origins, path)
    return Config(resolved, str(path), origins, files, strict=True)


# ------------------------------------------------------------------------------------------- showing
def _leaves(data: dict, prefix: str = ""):
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and key not in schema.BY_NAME and v:
            yield from _leaves(v, key)
        else:
            yield key, v


def describe_config(cfg: Config) -> str:
    """The resolved config, one ``key: value  # origin`` line per key, in schema order."""
    order = {k.name: i for i, k in enumerate(schema.KEYS)}
    rows = sorted(_leaves(cfg.data), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    chain = " <- ".join(f"base {_show(f)}" if i else _show(f) for i, f in enumerate(cfg.files))
    lines = [f"# resolved config: {chain or cfg.source}", "# origin: default (common/schema.py), file, base file, --set"]
    width = max((len(k) for k, _ in rows), default=10)
    for key, value in rows:
        text = json.dumps(value, default=str)
        lines.append(f"{key.ljust(width)} = {text}    # {cfg.origin(key)}")
    return "\n".join(lines)


def config_record(cfg: Config) -> dict:
    """Which config made an output: ``{file, base: [...], set: {key: value}}`` (for summaries)."""
    return {"file": _show(Path(cfg.source)), "base": [_show(f) for f in cfg.files[1:]],
            "set": {k: cfg.get(k, None) for k, o in sorted(cfg.origins.items()) if o == "--set"}}


def config_banner(cfg: Config) -> str:
    """One line saying which config file (and base files) a stage uses."""
    chain = " (base " + ", ".join(_show(f) for f in cfg.files[1:]) + ")" if len(cfg.files) > 1 else ""
    sets = sorted(k for k, o in cfg.origins.items() if o == "--set")
    return (f"config: {_show(Path(cfg.source))}{chain}" + (f"; --set {', '.join(sets)}" if sets else ""))


def config_from_dict(data: dict, source: str = "<dict>") -> Config:
    """A strict Config from a mapping, exactly as ``load_config`` makes one from a file: keys checked,
    schema defaults filled, references resolved, values checked (tests and tools)."""
    data = copy.deepcopy(data)
    data.pop("base", None)
    origins: dict = {}
    _walk_declared(data, "", source, origins, f"file {source}")
    _fill_defaults(data, origins)
    resolved = resolve_refs(data, source)
    _validate(resolved, origins, Path(source))
    return Config(resolved, source, origins, (), strict=True)
