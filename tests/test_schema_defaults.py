"""Defaults live in common/schema.py only (issue 11, item 1).

A Config that lacks a declared key reads the schema's default, with its ``${key}`` references resolved
in that config; and no module of the project passes a second copy of a declared default to
``cfg.get(key, default)`` or ``cfg.path(key, default)`` (an AST walk over every project file, so a
default copied into the code, which would silently disagree once the schema changes, fails here).
"""
from __future__ import annotations

import ast

from common import schema
from common.config import Config, config_from_dict
from tests.test_layering import REPO, project_files


def _is_config(node: ast.expr) -> bool:
    """The receiver is a Config by its name: ``cfg``, ``cell_cfg``, ``self.cfg``, ``config``."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.endswith("cfg") or name == "config"


def second_copies(files=None) -> list[str]:
    bad = []
    for path in files or project_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("get", "path") and len(node.args) == 2 and _is_config(node.func.value)
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                continue
            key = schema.BY_NAME.get(node.args[0].value)
            if key is not None and key.default is not schema.UNSET:
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
                bad.append(f"{where}:{node.lineno}: .{node.func.attr}('{key.name}', ...) repeats "
                           f"the schema default {key.default!r}")
    return bad


def test_no_module_repeats_a_schema_default():
    assert second_copies() == []


def test_the_walk_finds_a_repeated_default(tmp_path):
    """The check itself can fail: a module with a copied default is reported, one without is not."""
    bad = tmp_path / "copied_default.py"
    bad.write_text('def f(cfg):\n    return cfg.get("slr.protocol", "sound"), cfg.get("slr.model")\n')
    found = second_copies([bad])
    assert len(found) == 1 and "slr.protocol" in found[0] and ":2:" in found[0]


def test_a_config_lacking_a_key_reads_the_schema_default():
    raw = Config({"seed": 7, "output_dir": "/tmp/run"})
    for name in ("slr.protocol", "slr.bootstrap.n", "training.fed.weight", "model.window.length"):
        assert raw.get(name) == schema.BY_NAME[name].default
    assert raw.get("split.seed") == 7                              # ${seed}, resolved in this config
    assert raw.get("slr.bootstrap.seed") == 7
    assert str(raw.get("split.file")) == str(config_from_dict({"seed": 7, "output_dir": "/tmp/run"}).get("split.file"))
    # a value the mapping has wins; a key without a schema default stays an error naming the key
    assert Config({"slr": {"protocol": "paper"}}).get("slr.protocol") == "paper"
    try:
        raw.get("model.variant")
    except ValueError as err:
        assert "model.variant" in str(err)
    else:
        raise AssertionError("a key without a default read as a value")


# ------------------------------------------------------------------ dataclass fields and argparse options
def _literal(node: ast.expr | None) -> bool:
    """A value written into the code: a number, a bool or a non-empty string (None and "" are "unset")."""
    return isinstance(node, ast.Constant) and node.value is not None and node.value != ""


def literal_defaults(files) -> list[str]:
    """Dataclass fields and ``add_argument(..., default=...)`` options with a literal default of their own."""
    bad = []
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    "dataclass" in ast.unparse(d) for d in node.decorator_list):
                bad += [f"{path.name}:{f.lineno}: field {ast.unparse(f.target)} = {ast.unparse(f.value)}"
                        for f in node.body if isinstance(f, ast.AnnAssign) and _literal(f.value)]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
                bad += [f"{path.name}:{node.lineno}: {ast.unparse(node.args[0])} default={ast.unparse(k.value)}"
                        for k in node.keywords if k.arg == "default" and _literal(k.value)]
    return bad


def test_slr_settings_and_options_take_their_defaults_from_the_schema():
    """slr/: no dataclass field and no command-line option carries a default of its own (they read
    common/schema.py), and the defaults they read are the schema's."""
    from slr.run_scores import parse_args
    from slr.settings import Settings

    assert literal_defaults(sorted((REPO / "slr").glob("*.py"))) == []
    s, d = Settings(), schema.defaults("slr", resolve=True)
    assert (s.protocol, s.model, s.calibration, s.crossfit_folds, s.bootstrap_n, s.bootstrap_seed, s.n_folds) == (
        d["protocol"], d["model"], d["calibration"], d["crossfit_folds"], d["bootstrap"]["n"],
        d["bootstrap"]["seed"], d["bandwidth"]["n_folds"])
    assert len(s.grid) == d["bandwidth"]["grid_n"] and s.grid[0] == d["bandwidth"]["grid_min"]
    a = parse_args(["--scores-dir", "x", "--output-dir", "y"])
    assert (a.protocol, a.model, a.calibration, a.bootstrap) == (d["protocol"], d["model"], d["calibration"],
                                                                 d["bootstrap"]["n"])


def test_the_walk_finds_literal_dataclass_and_option_defaults(tmp_path):
    bad = tmp_path / "copied.py"
    bad.write_text("from dataclasses import dataclass\n\n\n@dataclass\nclass S:\n    model: str = 'kde'\n"
                   "    note: str = ''\n    x: int | None = None\n\n\ndef f(p):\n"
                   "    p.add_argument('--seed', type=int, default=1024)\n    p.add_argument('--x', default=None)\n")
    found = literal_defaults([bad])
    assert len(found) == 2 and ":6: field model = 'kde'" in found[0] and ":12: '--seed' default=1024" in found[1]


# ------------------------------------------------------------------ the whole project: copies of a schema default
def _value(node: ast.expr | None):
    """The literal a default spells (numbers, strings, bools, tuples and lists of them), else None."""
    try:
        value = ast.literal_eval(node) if node is not None else None
    except ValueError:
        return None
    return list(value) if isinstance(value, tuple) else value


def _names(key: schema.K) -> set[str]:
    """The names a copy of ``key`` goes by: each run of its dotted parts joined by ``_`` (slr.bootstrap.n:
    slr, bootstrap, n, bootstrap_n, slr_bootstrap, slr_bootstrap_n)."""
    parts = key.name.split(".")
    return {"_".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}


_BY_LEAF: dict[str, list[schema.K]] = {}
for _k in schema.KEYS:
    if _k.default is not schema.UNSET:
        for _n in _names(_k):
            _BY_LEAF.setdefault(_n, []).append(_k)


def _same(value, default) -> bool:
    norm = list(default) if isinstance(default, tuple) else default
    return value == norm and isinstance(value, bool) == isinstance(norm, bool)


def _defaults_written(path):
    """(line, name, value) of each dataclass field and ``add_argument`` option with a literal default."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ClassDef) and any("dataclass" in ast.unparse(d) for d in node.decorator_list):
            for f in node.body:
                if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name):
                    yield f.lineno, f.target.id, _value(f.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            dest = [k.value.value for k in node.keywords if k.arg == "dest" and isinstance(k.value, ast.Constant)]
            flag = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else ""
            name = dest[0] if dest else str(flag).lstrip("-").replace("-", "_")
            for k in node.keywords:
                if k.arg == "default":
                    yield node.lineno, name, _value(k.value)


def copied_schema_defaults(files=None) -> list[str]:
    """Dataclass fields and command-line options whose own default equals the schema default of a key
    they are named after (a second copy that would silently disagree once the schema changes)."""
    bad = []
    for path in files or project_files() + sorted((REPO / "benchmarks").glob("*.py")) + [REPO / "run_experiments.py"]:
        for line, name, value in _defaults_written(path):
            if value is None or value == "":
                continue
            keys = [k.name for k in _BY_LEAF.get(name, []) if _same(value, k.default)]
            if keys:
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
                bad.append(f"{where}:{line}: {name} = {value!r} copies the schema default of {', '.join(keys)}")
    return bad


def test_no_dataclass_field_or_option_copies_a_schema_default():
    assert copied_schema_defaults() == []


def test_the_walk_finds_a_copied_field_or_option_default(tmp_path):
    """A planted copy is reported (a field named after a key's last part, an option after a run of its
    parts, a tuple against a list default); a differing value, None and an unrelated name are not."""
    bad = tmp_path / "planted.py"
    bad.write_text("from dataclasses import dataclass\n\n\n@dataclass\nclass S:\n    upscale: str = 'linear'\n"
                   "    jpeg_quality: tuple = (50, 95)\n    frames: int = 13\n    rank: int = 0\n"
                   "    persons: int | None = None\n\n\ndef f(p):\n"
                   "    p.add_argument('--bootstrap-n', type=int, default=1000)\n"
                   "    p.add_argument('--n', dest='bootstrap', type=int, default=1000)\n")
    found = copied_schema_defaults([bad])
    assert len(found) == 4, found
    assert ":6: upscale = 'linear'" in found[0] and "robustness.upscale" in found[0]
    assert ":7: jpeg_quality = [50, 95]" in found[1] and "demo.jpeg_quality" in found[1]
    assert ":14: bootstrap_n = 1000" in found[2] and "slr.bootstrap.n" in found[2]
    assert ":15: bootstrap = 1000" in found[3]
