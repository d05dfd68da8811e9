"""The runner's caching on a tiny stage table: skip what is up to date, re-run exactly what is downstream
of a change, --from/--to/--force, stage failures and disabled stages. Each fake stage is a real script
run as its own process through common.cli.run_stage, like the numbered scripts."""
from __future__ import annotations

import os
import time

import pytest
import yaml

import run_pipeline
from common.config import load_config
from common.pipeline import STAMP, plan, tree_fingerprint
from common.stages import STAGES, Stage

SCRIPT = '''"""fake stage {name}"""
import sys
from common.cli import run_stage
from common.io import write_json

def main(cfg, args):
    if cfg.get("fail", None) == "{name}":
        raise SystemExit(3)
    d = cfg.stage_dir("{name}")
    write_json(d / "out.json", {{"value": cfg.get("{key}", None)}})
    (d / "value_{{}}.txt".format(cfg.get("{key}", None))).write_text("x")
    with open(cfg.path("log"), "a") as fh:
        fh.write("{name}\\n")

if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__))
'''


@pytest.fixture
def toy(tmp_path):
    """A 5-stage table: 0 (optional generator) -> 1 -> {2, 3} -> 4, each with its own config section."""
    keys = {"00_gen": "gen", "01_a": "a", "02_b": "b", "03_c": "c", "04_d": "d"}
    scripts = {}
    for name, key in keys.items():
        p = tmp_path / f"{name}.py"
        p.write_text(SCRIPT.format(name=name, key=f"{key}.x"))
        scripts[name] = str(p)
    table = (
        Stage(0, "00_gen", scripts["00_gen"], ("gen",), enabled_key="gen.enabled"),
        Stage(1, "01_a", scripts["01_a"], ("seed", "a"), (0,), ("ext",)),
        Stage(2, "02_b", scripts["02_b"], ("b",), (1,)),
        Stage(3, "03_c", scripts["03_c"], ("c",), (1,)),
        Stage(4, "04_d", scripts["04_d"], ("d",), (2, 3)),
    )
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "in.txt").write_text("x")
    cfg = {"seed": 1, "output_dir": str(tmp_path / "out"), "log": str(tmp_path / "log.txt"), "ext": str(ext),
           "gen": {"enabled": True, "x": 0}, "a": {"x": 1}, "b": {"x": 2}, "c": {"x": 3}, "d": {"x": 4}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))

    class Toy:
        def __init__(self):
            self.table, self.config, self.log, self.out, self.ext = table, str(path), tmp_path / "log.txt", \
                tmp_path / "out", ext

        def run(self, *extra):
            """Run the runner; return (exit code, stage names that ran, in order)."""
            self.log.unlink(missing_ok=True)
            rc = run_pipeline.main(["--config", self.config, *extra], table)
            ran = self.log.read_text().split() if self.log.exists() else []
            return rc, ran

    return Toy()


def test_second_run_skips_everything(toy, capfd):
    assert toy.run() == (0, ["00_gen", "01_a", "02_b", "03_c", "04_d"])
    for name in ("00_gen", "01_a", "02_b", "03_c", "04_d"):
        assert (toy.out / name / STAMP).is_file()
    capfd.readouterr()
    assert toy.run() == (0, [])
    out = capfd.readouterr().out
    assert out.count("skipped, up to date") == 5
    assert "0 stage(s) ran, 5 skipped" in out


@pytest.mark.parametrize("override, expected", [
    ("b.x=20", ["02_b", "04_d"]),
    ("c.x=30", ["03_c", "04_d"]),
    ("d.x=40", ["04_d"]),
    ("a.x=10", ["01_a", "02_b", "03_c", "04_d"]),
    ("seed=2", ["01_a", "02_b", "03_c", "04_d"]),
    ("gen.x=5", ["00_gen", "01_a", "02_b", "03_c", "04_d"]),
    ("unrelated=1", []),
])
def test_changed_value_reruns_exactly_downstream(toy, override, expected):
    toy.run()
    rc, ran = toy.run("--set", override)
    assert rc == 0 and ran == expected
    assert toy.run("--set", override) == (0, [])          # and then it is up to date again


def test_changed_external_input_and_edited_outputs(toy):
    toy.run()
    time.sleep(0.01)
    (toy.ext / "new.txt").write_text("more data")
    assert toy.run() == (0, ["01_a", "02_b", "03_c", "04_d"])
    (toy.out / "03_c" / "out.json").unlink()                # an output removed by hand
    assert toy.run() == (0, ["03_c", "04_d"])
    p = toy.out / "02_b" / "out.json"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # an output edited by hand
    assert toy.run() == (0, ["02_b", "04_d"])


def test_range_force_and_stale_upstream_warning(toy, capfd):
    toy.run()
    assert toy.run("--from", "2", "--to", "3", "--force") == (0, ["02_b", "03_c"])
    assert toy.run() == (0, ["04_d"])                       # its inputs changed under it
    capfd.readouterr()
    assert toy.run("--from", "2", "--set", "a.x=11") == (0, [])
    err = capfd.readouterr().err
    assert "stage 01_a (before --from) is out of date: config 'a' changed" in err


def test_failure_stops_and_leaves_no_stamp(toy, capfd):
    rc, ran = toy.run("--set", "fail=02_b")
    assert rc == 3 and ran == ["00_gen", "01_a"]
    assert not (toy.out / "02_b" / STAMP).exists()
    assert "stage 02_b failed (exit 3)" in capfd.readouterr().err
    assert toy.run() == (0, ["02_b", "03_c", "04_d"])       # 00 and 01 were stamped before the failure


def test_disabled_stage_and_dry_run(toy, capfd):
    rc, ran = toy.run("--set", "gen.enabled=false")
    assert rc == 0 and ran == ["01_a", "02_b", "03_c", "04_d"]
    assert not (toy.out / "00_gen").exists()
    assert "00_gen: skipped, not enabled (gen.enabled is false)" in capfd.readouterr().out
    rc, ran = toy.run("--set", "gen.enabled=false", "--set", "c.x=9", "--dry-run")
    assert rc == 0 and ran == []
    out = capfd.readouterr().out
    assert "03_c: would run (config 'c' changed)" in out
    assert "04_d: would run (upstream stage 03_c runs first)" in out
    assert "02_b: skipped, up to date" in out


def test_missing_script_is_a_clear_error(toy, capfd):
    table = toy.table[:2] + (Stage(2, "02_b", "no/such_script.py", ("b",), (1,)),)
    rc = run_pipeline.main(["--config", toy.config], table)
    assert rc == 2
    assert "stage 02_b must run but its script no/such_script.py does not exist" in capfd.readouterr().err


def test_tree_fingerprint(tmp_path):
    assert tree_fingerprint(None) == "none"
    assert tree_fingerprint(tmp_path / "nope") == "missing"
    (tmp_path / "a.txt").write_text("1")
    fp = tree_fingerprint(tmp_path)
    (tmp_path / ".hidden").write_text("ignored")
    (tmp_path / "x.tmp").write_text("ignored")
    assert tree_fingerprint(tmp_path) == fp
    (tmp_path / "b.txt").write_text("2")
    assert tree_fingerprint(tmp_path) != fp


def test_real_stage_table_is_consistent():
    numbers = [s.number for s in STAGES]
    assert numbers == sorted(numbers) == list(range(0, 16))
    for s in STAGES:
        assert s.name.startswith(f"{s.number:02d}_")
        assert all(i < s.number for i in s.inputs)
    cfg = load_config("configs/uadfv.yaml")
    decisions, _ = plan(cfg, 0, 15)
    assert decisions[0].stage.name == "00_demo_videos" and not decisions[0].run


def test_rerun_starts_clean_but_a_failed_run_keeps_its_folder(toy, capfd):
    toy.run()
    assert sorted(p.name for p in (toy.out / "02_b").glob("value_*")) == ["value_2.txt"]
    assert toy.run("--set", "b.x=7") == (0, ["02_b", "04_d"])
    assert sorted(p.name for p in (toy.out / "02_b").glob("value_*")) == ["value_7.txt"]   # stale file gone
    assert "02_b: previous outputs removed (out of date)" in capfd.readouterr().out
    # a failed run leaves no stamp; its partial outputs are kept for a stage that resumes
    (toy.out / "03_c" / "partial.txt").write_text("resume state")
    (toy.out / "03_c" / STAMP).unlink()
    assert toy.run("--set", "fail=03_c")[0] == 3
    assert (toy.out / "03_c" / "partial.txt").is_file()
    assert toy.run() == (0, ["03_c", "04_d"]) and (toy.out / "03_c" / "partial.txt").is_file()
