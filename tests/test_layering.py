"""One-way layers: common <- preprocessing, slr (siblings) <- training <- evaluation <- casework, results_grid.

The test walks the import statements of every module of the project packages (with ast, so also the
imports inside functions, which run only on some paths) and fails on an import of a package of the
same or a higher rank (an upward or sibling import). Tests and benchmarks may import anything.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# rank of each project package; a module may import only packages of a lower rank (and its own)
RANKS = {"common": 0, "preprocessing": 1, "slr": 1, "training": 2, "evaluation": 3, "casework": 4,
         "results_grid": 4, "evidence": 5, "run_pipeline": 5, "run_experiments": 5, "run_scores": 5}   # the commands sit on top
PACKAGES = ("common", "preprocessing", "slr", "training", "evaluation", "casework", "results_grid")
TOP_MODULES = ("evidence.py", "run_pipeline.py", "run_experiments.py")
# commands kept inside a package for their documented name (python -m slr.run_scores): ranked as commands,
# and no project module may import them (test_no_module_imports_a_command)
PACKAGE_COMMANDS = {"slr/run_scores.py": "run_scores"}


def project_files() -> list[Path]:
    files = [REPO / m for m in TOP_MODULES if (REPO / m).is_file()]
    for pkg in PACKAGES:
        if (REPO / pkg).is_dir():
            files += sorted((REPO / pkg).rglob("*.py"))
    return files


def owner(path: Path) -> str:
    rel = path.relative_to(REPO)
    if rel.as_posix() in PACKAGE_COMMANDS:
        return PACKAGE_COMMANDS[rel.as_posix()]
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(REPO)
    here = list(rel.parts[:-1])           # the package the module is in
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:                # relative: from .x / from .. import y
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                target = base[0] if base else (node.module or "").split(".")[0]
            else:
                target = (node.module or "").split(".")[0]
            out.append((node.lineno, target))
    return out


def violations(files=None) -> list[str]:
    bad = []
    for path in files or project_files():
        me = owner(path)
        for line, pkg in imported_packages(path):
            if pkg not in RANKS or pkg == me:
                continue
            if RANKS[pkg] >= RANKS[me]:
                kind = "sibling" if RANKS[pkg] == RANKS[me] else "upward"
                bad.append(f"{path.relative_to(REPO)}:{line}: {me} imports {pkg} ({kind} import)")
    return bad


def test_no_upward_or_sibling_imports():
    assert violations() == []


def test_the_walker_sees_imports_inside_functions():
    """The checker itself: an import hidden in a function body, and a relative one, are found."""
    pkg = REPO / "training"
    probe = pkg / "_layering_probe_tmp.py"
    probe.write_text("def f():\n    from evaluation import report\n    from ..evaluation import x\n")
    try:
        found = violations([probe])
    finally:
        probe.unlink()
    assert found == ["training/_layering_probe_tmp.py:2: training imports evaluation (upward import)",
                     "training/_layering_probe_tmp.py:3: training imports evaluation (upward import)"], found


def imported_modules(path: Path) -> set[str]:
    """Dotted names of every module ``path`` imports (``from a import b`` gives a and a.b), relative resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = list(path.relative_to(REPO).parts[:-1])
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - (node.level - 1)] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out |= {mod} | {f"{mod}.{a.name}" for a in node.names}
    return out


def test_no_module_imports_a_command():
    """A command in a package (slr/run_scores.py) sits on top: nothing in the project imports it."""
    commands = {p[:-3].replace("/", ".") for p in PACKAGE_COMMANDS}
    found = [f"{p.relative_to(REPO)} imports {m}" for p in project_files() if p.relative_to(REPO).as_posix()
             not in PACKAGE_COMMANDS for m in imported_modules(p) & commands]
    assert found == []
    probe = REPO / "slr" / "_layering_probe_tmp.py"
    probe.write_text("def f():\n    from . import run_scores\n")
    try:
        assert imported_modules(probe) & commands == {"slr.run_scores"}
    finally:
        probe.unlink()


def test_sibling_import_is_refused():
    probe = REPO / "slr" / "_layering_probe_tmp.py"
    probe.write_text("import preprocessing.faces\nfrom common import io\n")
    try:
        found = violations([probe])
    finally:
        probe.unlink()
    assert found == ["slr/_layering_probe_tmp.py:1: slr imports preprocessing (sibling import)"]


def test_no_stage_folder_names_outside_the_stage_table():
    """A stage's folder name is spelled in common/stages.py only; code asks the table (docstrings may name it)."""
    from common.stages import STAGES
    folders = {s.folder for s in STAGES} | {"15_robustness"}
    found = []
    for path in project_files():
        if path.relative_to(REPO).as_posix() == "common/stages.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if any(f in folders for f in node.value.replace("/", " ").replace('"', " ").split()):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value[:60]!r}")
    assert found == []
