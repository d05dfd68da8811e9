"""Issue 19 items 5 and 6: the report opens with one verdict line (passed / failed, how many criteria
are not met, fit for casework or not), the runner's last line repeats it with the report's path, and
``slr.run_scores`` writes the same report for a lab's own scores, the score recorded as user-supplied,
titles without stage numbers, refusing to replace an earlier result without --force and saying which
rows its intervals treat as independent."""
from __future__ import annotations

import json
import re
import shutil

import matplotlib.pyplot as plt
import pytest
import yaml

import run_pipeline
from common.config import Config
from common.io import read_csv, write_csv
from evaluation import report as R
from slr import run_scores
from slr_helpers import write_person_scores

CRITERIA = [{"metric": "cllr", "max": 0.7}, {"metric": "auc", "min": 0.85}, {"metric": "eer", "max": 0.1}]


def _scores(directory, seed=0, sep=1.0):
    write_person_scores(directory, {"calib": 14, "test": 10}, sep=sep, seed=seed)


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A run_scores output; the titles of every figure it saved are kept."""
    tmp = tmp_path_factory.mktemp("own")
    _scores(tmp / "in")
    titles = []
    with pytest.MonkeyPatch.context() as mp:
        close = plt.close
        mp.setattr(plt, "close", lambda fig=None: (titles.append(fig._suptitle.get_text() if fig and fig._suptitle
                                                                  else ""), close(fig)))
        assert run_scores.main(["--scores-dir", str(tmp / "in"), "--output-dir", str(tmp / "out"),
                                "--model", "logistic", "--bootstrap", "100", "--no-video-level"]) == 0
    return tmp, titles


def _cfg(out, criteria, demo=False):
    return Config({"experiment": "t", "output_dir": str(out), "demo": {"enabled": demo},
                   "report": {"split": "test", "criteria": criteria, "compare": []}}, "test-config")


def _expected_not_met(s10, criteria):
    """Criteria x pool (test, calib) judged by hand on the pessimistic end of each interval."""
    n = bad = 0
    for c in criteria:
        for pool in ("test", "calib"):
            blk = s10["levels"]["frame"][pool]
            lo, hi = blk["ci95"][c["metric"]]
            ok = hi <= c["max"] if "max" in c else lo >= c["min"]
            n, bad = n + 1, bad + (not ok)
    return n, bad


def _first_line(html: str) -> str:
    body = html.split("<body>", 1)[1]
    first = re.search(r"</h1>\s*<p[^>]*>(.*?)</p>", body, re.S)
    assert body.lstrip().startswith("<h1>") and first, body[:300]
    return first.group(1)


def test_report_opens_with_the_verdict(own):
    out = own[0] / "out"
    s10 = json.loads((out / "10_kde_lr" / "summary.json").read_text())
    n, bad = _expected_not_met(s10, CRITERIA)
    assert 0 < bad < n, (n, bad)                 # a mixed result, so the count is tested
    html, summary = R.render(R.load_run(out, _cfg(out, CRITERIA)), _cfg(out, CRITERIA))
    line = _first_line(html)
    assert line.startswith(f"VALIDATION FAILED: {bad} of {n} criteria not met ({bad} fail)")
    assert line.endswith("the LR system is NOT fit for casework.")
    assert summary["verdict"]["line"] == line and summary["verdict"]["fit_for_casework"] is False


def test_verdict_passes_only_when_every_criterion_passes_and_not_on_demo_data(own):
    out = own[0] / "out"
    easy = [{"metric": "cllr", "max": 1.0}, {"metric": "auc", "min": 0.5}]
    html, summary = R.render(R.load_run(out), _cfg(out, easy))
    assert _first_line(html) == ("VALIDATION PASSED: all 4 criteria met; the LR system is fit for casework "
                                 "within its validated conditions.")
    html, _ = R.render(R.load_run(out), _cfg(out, easy, demo=True))
    assert _first_line(html).endswith("NOT fit for casework (demonstration data).")
    html, _ = R.render(R.load_run(out), _cfg(out, []))
    assert _first_line(html).startswith("VALIDATION NOT JUDGED")


def test_degenerate_system_fails_the_verdict(own, tmp_path):
    out = tmp_path / "degen"
    shutil.copytree(own[0] / "out", out)
    path = out / "10_kde_lr" / "summary.json"
    s10 = json.loads(path.read_text())
    s10["system"]["bounds_log10"]["frame"] = [0.0, 0.0]
    path.write_text(json.dumps(s10))
    html, summary = R.render(R.load_run(out), _cfg(out, [{"metric": "auc", "min": 0.0}]))
    assert _first_line(html) == ("VALIDATION FAILED: 2 of 2 criteria not met (2 not passed, degenerate system); "
                                 "the LR system is NOT fit for casework (degenerate LR system).")


def test_runner_last_line_is_the_verdict_with_the_report_path(own, tmp_path, capfd):
    out = tmp_path / "run"
    shutil.copytree(own[0] / "out", out)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"experiment": "t", "output_dir": str(out), "report": {"criteria": CRITERIA}}))
    assert run_pipeline.main(["--config", str(cfg), "--from", "16", "--to", "16"]) == 0
    lines = capfd.readouterr().out.strip().splitlines()
    verdict = json.loads((out / "16_report" / "summary.json").read_text())["verdict"]
    assert verdict["status"] == "failed"
    assert lines[-1] == f"== {verdict['line']} Report: {out / '16_report' / 'report.html'}"


def test_run_scores_writes_the_report_with_the_user_supplied_score(own):
    tmp, titles = own
    out = tmp / "out"
    html = (out / "report.html").read_text()
    assert _first_line(html).startswith("VALIDATION ")
    assert json.loads((out / "system" / "system.json").read_text())["score_spec"]["name"] == "user-supplied"
    assert json.loads((out / "summary.json").read_text())["system"]["score"] == "user-supplied"
    assert "Score: <b>user-supplied</b>" in html and "cosine_centroid" not in html
    headings = re.findall(r"<h[23][^>]*>(.*?)</h[23]>", html)
    assert "Tippett plots" in headings and not [h for h in headings if re.search(r"stage|\d\d", h, re.I)], headings
    assert "Run status" not in headings and "Classifier metrics" not in headings
    assert "(stage " not in html.split("id=\"validation-matrix\"")[1].split("</table>")[0]
    assert len(titles) >= 8 and not [t for t in titles if re.search(r"stage \d", t, re.I)], titles
    assert "Tippett plot, sound protocol, frame level" in titles


def test_run_scores_refuses_to_replace_an_earlier_result_without_force(own, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(own[0] / "out", out)
    before = (out / "summary.json").read_bytes()
    args = ["--scores-dir", str(own[0] / "in"), "--output-dir", str(out), "--bootstrap", "0", "--no-video-level"]
    assert run_scores.main(args) == 2
    assert "earlier run_scores result; add --force" in capsys.readouterr().err
    assert (out / "summary.json").read_bytes() == before
    assert run_scores.main(args + ["--force"]) == 0
    assert (out / "summary.json").read_bytes() != before and (out / "report.html").is_file()


def test_run_scores_says_which_rows_its_intervals_treat_as_independent(tmp_path, capsys):
    _scores(tmp_path / "in")
    for pool, drop in (("calib", ("person_id",)), ("test", ("person_id", "video_id"))):
        cols = read_csv(tmp_path / "in" / f"{pool}.csv")
        write_csv(tmp_path / "in" / f"{pool}.csv", {k: v for k, v in cols.items() if k not in drop})
    assert run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                            "--bootstrap", "0", "--no-video-level"]) == 0
    text = capsys.readouterr().out
    assert ("calib.csv has no person_id column: the cross-fitting folds and the 95 % intervals treat every video "
            "(video_id) as an independent person") in text
    assert "test.csv has no person_id column: the cross-fitting folds and the 95 % intervals treat every row as an " \
           "independent person" in text
