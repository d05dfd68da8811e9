"""Runs leave their record (issue 19, item 8): the resolved config and each stage's console log in the
run folder; Ctrl-C during a stage ends with one line and exit 130, the earlier outputs unchanged and
the work folder gone; stage 02 refuses a pool without both classes; the bootstrap's bound and bar."""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from common.config import ConfigError, load_config
from common.stages import TABLE_ENV, Stage, work_dir

REPO = Path(__file__).resolve().parents[1]
SCRIPT = '''"""toy stage that writes, prints, and sleeps when told to"""
import sys, time
from common.cli import run_stage
from common.io import write_json

def main(cfg, args, out):
    write_json(out / "out.json", {{"n": cfg.get("slr.batch_size")}})
    print("toy stage working", flush=True)
    if cfg.get("experiment") == "sleep":
        (cfg.output_dir.parent / "ready").write_text("x")
        time.sleep(60)

if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="{sid}"))
'''


@pytest.fixture
def toy(tmp_path):
    """A one-stage table (non-resumable, like stages 02 and 04-16) and its config."""
    script = tmp_path / "10_toy.py"
    script.write_text(SCRIPT.format(sid="10"))
    table = (Stage("10", "10_toy", str(script), ("slr",)),)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "slr": {"batch_size": 4}}))
    env = {**os.environ, "PYTHONPATH": str(REPO), TABLE_ENV: json.dumps([{**s.__dict__} for s in table])}
    return tmp_path, cfg, env


def _runner(cfg, env, *extra, wait=True):
    cmd = [sys.executable, str(REPO / "run_pipeline.py"), "--config", str(cfg), *extra]
    if wait:
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_run_folder_keeps_resolved_config_and_stage_log(toy):
    tmp, cfg, env = toy
    p = _runner(cfg, env)
    assert p.returncode == 0, p.stderr
    out = tmp / "out"
    text = (out / "resolved_config.txt").read_text()
    assert "slr.batch_size                     = 4    # file" in text and "# default" in text   # with origins
    log = (out / "logs" / "10_toy.log").read_text()
    assert "toy stage working" in log and "stage 10_toy: outputs in" in log


@pytest.mark.parametrize("via", ["runner", "stage script"])
def test_sigint_during_a_stage_one_line_exit_130(toy, via):
    tmp, cfg, env = toy
    first = subprocess.run([sys.executable, str(tmp / "10_toy.py"), "--config", str(cfg)], cwd=REPO, env=env)
    assert first.returncode == 0                                  # earlier outputs
    out = tmp / "out" / "10_toy"
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    sleep = ("--set", "experiment=sleep", "--set", "slr.batch_size=5")
    proc = (_runner(cfg, env, "--force", *sleep, wait=False) if via == "runner" else
            subprocess.Popen([sys.executable, str(tmp / "10_toy.py"), "--config", str(cfg), *sleep], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    t0 = time.time()
    while not (tmp / "ready").exists():
        assert proc.poll() is None and time.time() - t0 < 60, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not re.match(r"\d\d:\d\d:\d\d INFO ", ln)]
    assert len(lines) == 1 and "Traceback" not in stdout + stderr, stderr
    assert lines[0].startswith("interrupted (Ctrl-C): stage 10_toy stopped")
    assert str(work_dir(out)) in lines[0] and "every earlier output are unchanged" in lines[0]
    assert not work_dir(out).exists()
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    # a work folder left behind (a killed stage) is gone after the next successful run
    work_dir(out).mkdir()
    (work_dir(out) / "junk.txt").write_text("left by a killed run")
    assert _runner(cfg, env, "--force").returncode == 0
    assert not work_dir(out).exists() and not (out / "junk.txt").exists()


def _tiny_dataset(root: Path, real: int, fake: int) -> Path:
    img = np.full((16, 16, 3), 128, np.uint8)
    for label, n, sfx in (("real", real, ""), ("fake", fake, "_fake")):
        for i in range(n):
            d = root / label / "frames" / f"{i:04d}{sfx}"
            d.mkdir(parents=True)
            cv2.imwrite(str(d / "000.png"), img)
    return root


def test_stage_02_refuses_a_pool_without_both_classes(tmp_path):
    root = _tiny_dataset(tmp_path / "ds", real=8, fake=1)
    split = tmp_path / "split.json"
    p = subprocess.run([sys.executable, "preprocessing/02_make_split.py", "--config", "configs/uadfv.yaml",
                        "--dataset-root", str(root), "--output", str(split), "--set", f"output_dir={tmp_path / 'o'}"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "has no fake video(s)" in err[0] and "split pool '" in err[0]
    assert "split.ratios" in err[0] and str(root) in err[0] and "Traceback" not in p.stderr
    assert not split.exists() and not (tmp_path / "o" / "02_split").exists()


def test_bootstrap_n_bounded_and_bar_shown(monkeypatch):
    with pytest.raises(ConfigError, match="slr.bootstrap.n"):
        load_config("configs/demo.yaml", ["slr.bootstrap.n=1000000"])
    assert load_config("configs/demo.yaml", ["slr.bootstrap.n=20000"]).get("slr.bootstrap.n") == 20000

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    from slr.bootstrap import bootstrap_samples
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    rng = np.random.default_rng(0)
    s = bootstrap_samples(rng.normal(size=40), np.arange(40) % 2, np.arange(40) // 4, ("cllr",), n=1000, seed=1)
    assert s["cllr"].shape == (1000,) and "bootstrap" in term.getvalue() and "/1000" in term.getvalue()


def test_stage_log_keeps_whole_lines_of_redrawn_progress_bars():
    from common.console import Tee
    term, log = io.StringIO(), io.StringIO()
    t = Tee(term, log)
    for chunk in ["start\n", "\rbar 1/3", "\rbar 2/3", "\rbar 3/3", "\n", "\r       \r", "after\nhalf", "\r\rx\n", "tail"]:
        t.write(chunk)
    t.close_line()
    assert log.getvalue() == "start\nbar 3/3\nafter\nx\ntail\n"          # the bar as last drawn; erased: nothing
    assert term.getvalue() == "start\n\rbar 1/3\rbar 2/3\rbar 3/3\n\r       \rafter\nhalf\r\rx\ntail"   # unchanged
