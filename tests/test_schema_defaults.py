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
