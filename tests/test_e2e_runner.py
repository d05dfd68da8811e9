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
from common.pipeline import STAMP, file_fingerprint, plan, tree_fingerprint
from common.stages import STAGES, Stage

# The toy stages read real schema keys (a strict config knows no others): each stage "owns" one.
KEYS = {"00": ("demo", "demo.persons"), "01": ("preprocessing", "preprocessing.size"),
        "02": ("split", "split.unit"), "03": ("features", "features.batch_size"), "04": ("slr", "slr.batch_size")}
SCRIPT = '''"""fake stage {name}"""
import sys
from common.cli import run_stage
from common.io import write_json

def main(cfg, args, out):
    write_json(out / "out.json", {{"value": cfg.get("{key}")}})
    (out / "value_{{}}.txt".format(cfg.get("{key}"))).write_text("x")
    with open(cfg.output_dir.parent / "log.txt", "a") as fh:
        fh.write("{name}\\n")
    if cfg.get("experiment") == "fail_{name}":      # fails after writing (half-written outputs)
        raise SystemExit(3)

if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="{sid}"))
'''


@pytest.fixture
def toy(tmp_path):
    """A 5-stage table: 0 (optional generator) -> 1 -> {2, 3} -> 4, each with its own config section."""
    names = {"00": "00_gen", "01": "01_a", "02": "02_b", "03": "03_c", "04": "04_d"}
    scripts = {}
    for sid, name in names.items():
        p = tmp_path / f"{name}.py"
        p.write_text(SCRIPT.format(name=name, key=KEYS[sid][1], sid=sid))
        scripts[name] = str(p)
    table = (
        Stage("00", "00_gen", scripts["00_gen"], ("demo",), enabled_key="demo.enabled"),
        Stage("01", "01_a", scripts["01_a"], ("seed", "preprocessing"), ("00",), ("preprocessing.input",)),
        Stage("02", "02_b", scripts["02_b"], ("split",), ("01",)),
        Stage("03", "03_c", scripts["03_c"], ("features",), ("01",)),
        Stage("04", "04_d", scripts["04_d"], ("slr",), ("02", "03")),
    )
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "in.txt").write_text("x")
    cfg = {"seed": 1, "output_dir": str(tmp_path / "out"), "preprocessing": {"input": str(ext), "size": 64},
           "demo": {"enabled": True, "persons": 5}, "split": {"unit": "person"}, "features": {"batch_size": 3},
           "slr": {"batch_size": 4}}
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
    ("split.unit=video", ["02_b", "04_d"]),
    ("features.batch_size=30", ["03_c", "04_d"]),
    ("slr.batch_size=40", ["04_d"]),
    ("preprocessing.size=100", ["01_a", "02_b", "03_c", "04_d"]),
    ("seed=2", ["01_a", "02_b", "03_c", "04_d"]),
    ("demo.persons=6", ["00_gen", "01_a", "02_b", "03_c", "04_d"]),
    ("evaluation.splits=[test]", []),
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
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes (a copy): up to date
    assert toy.run() == (0, [])
    p.write_text(p.read_text() + " ")                       # an output edited by hand
    assert toy.run() == (0, ["02_b", "04_d"])


def test_range_force_and_stale_upstream_warning(toy, capfd):
    toy.run()
    assert toy.run("--from", "2", "--to", "3", "--force") == (0, ["02_b", "03_c"])
    assert toy.run() == (0, [])                             # 02, 03 wrote the same bytes: 04 is up to date
    capfd.readouterr()
    assert toy.run("--from", "2", "--set", "preprocessing.size=20") == (0, [])
    err = capfd.readouterr().err
    assert "stage 01_a (before --from) is out of date: config 'preprocessing' changed" in err


def test_failure_stops_and_leaves_no_stamp(toy, capfd):
    rc, ran = toy.run("--set", "experiment=fail_02_b")
    assert rc == 3 and ran == ["00_gen", "01_a", "02_b"]      # 02_b started, wrote, then failed
    assert not (toy.out / "02_b" / STAMP).exists()
    assert "stage 02_b failed (exit 3)" in capfd.readouterr().err
    assert toy.run() == (0, ["02_b", "03_c", "04_d"])       # 00 and 01 were stamped before the failure


def test_disabled_stage_and_dry_run(toy, capfd):
    rc, ran = toy.run("--set", "demo.enabled=false")
    assert rc == 0 and ran == ["01_a", "02_b", "03_c", "04_d"]
    assert not (toy.out / "00_gen").exists()
    assert "00_gen: skipped, not enabled (demo.enabled is false)" in capfd.readouterr().out
    rc, ran = toy.run("--set", "demo.enabled=false", "--set", "features.batch_size=9", "--dry-run")
    assert rc == 0 and ran == []
    out = capfd.readouterr().out
    assert "03_c: would run (config 'features' changed)" in out
    assert "04_d: would run (upstream stage 03_c runs first)" in out
    assert "02_b: skipped, up to date" in out


def test_missing_script_is_a_clear_error(toy, capfd):
    table = toy.table[:2] + (Stage("02", "02_b", "no/such_script.py", ("split",), ("01",)),)
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


def test_small_file_fingerprint_is_content_only(tmp_path):
    """A copied or re-materialised small file (new mtime, same bytes) is unchanged; new bytes are not;
    a large file also carries its mtime (its middle is not hashed)."""
    small, big = tmp_path / "frame.png", tmp_path / "video.bin"
    small.write_bytes(b"abc")
    big.write_bytes(b"\0" * (3 << 20))
    fp_small, fp_big = file_fingerprint(small), file_fingerprint(big)
    os.utime(small, ns=(1, 1))
    os.utime(big, ns=(1, 1))
    assert file_fingerprint(small) == fp_small
    assert file_fingerprint(big) != fp_big
    small.write_bytes(b"abd")
    assert file_fingerprint(small) != fp_small


def test_real_stage_table_is_consistent():
    ids = [s.id for s in STAGES]
    assert ids[:3] == ["00", "01", "02"] and "03a" in ids and "04b" in ids and ids[-1] == "16"
    cfg = load_config("configs/uadfv.yaml")
    decisions, _ = plan(cfg, "00", "16")
    assert decisions[0].stage.name == "00_demo_videos" and not decisions[0].run
    assert [d.stage.id for d in decisions if not d.run and "not enabled" in d.reason] == ["00", "03a", "04b", "15b"]
    fid = load_config("configs/uadfv_deepfidelity.yaml")
    decisions, _ = plan(fid, "03a", "04b")
    assert [d.stage.id for d in decisions] == ["03a", "03", "04", "04b"] and all(d.run for d in decisions)


def test_rerun_keeps_outputs_until_replaced_and_a_failed_run_changes_nothing(toy, capfd):
    toy.run()
    assert sorted(p.name for p in (toy.out / "02_b").glob("value_*")) == ["value_person.txt"]
    assert toy.run("--set", "split.unit=video") == (0, ["02_b", "04_d"])
    assert sorted(p.name for p in (toy.out / "02_b").glob("value_*")) == ["value_video.txt"]   # replaced whole
    assert "previous outputs removed" not in capfd.readouterr().out
    # a failing re-run (it writes, then fails) leaves the stage folder as it was and no work folder
    before = {p.name: p.read_bytes() for p in (toy.out / "03_c").iterdir()}
    assert toy.run("--set", "features.batch_size=7", "--set", "experiment=fail_03_c")[0] == 3
    assert {p.name: p.read_bytes() for p in (toy.out / "03_c").iterdir()} == before
    assert not (toy.out / ".03_c.work").exists()


RESUMABLE = '''"""fake resumable stage"""
import sys
from common.cli import run_stage

def main(cfg, args, out):
    done = sorted(p.name for p in out.glob("part_*"))
    (out / f"part_{len(done)}").write_text("x")          # one unit of work per run
    if len(done) == 0:
        raise SystemExit(4)                              # the first attempt dies after one unit
    (out / "resumed_from.txt").write_text(",".join(done))

if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="01"))
'''


def test_a_resumable_stage_keeps_its_work_folder_and_resumes(tmp_path):
    script = tmp_path / "01_r.py"
    script.write_text(RESUMABLE)
    table = (Stage("01", "01_r", str(script), ("preprocessing",), resumable=True),)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"seed": 1, "output_dir": str(tmp_path / "out")}))
    assert run_pipeline.main(["--config", str(cfg)], table) == 4
    assert not (tmp_path / "out" / "01_r").exists()                       # nothing published
    assert (tmp_path / "out" / ".01_r.work" / "part_0").is_file()          # the work is kept
    assert run_pipeline.main(["--config", str(cfg)], table) == 0
    final = tmp_path / "out" / "01_r"
    assert (final / "resumed_from.txt").read_text() == "part_0" and (final / STAMP).is_file()
    assert not (tmp_path / "out" / ".01_r.work").exists()                 # published by rename
