"""Stage 16: the validation report, one self-contained HTML file per run.

Reads: every earlier stage's ``*.json`` summaries, PNG figures and runner stamps under
``<output_dir>/``; the runs listed in ``report.compare``; the criteria in ``report.criteria``.
Writes: ``<output_dir>/16_report/report.html`` (figures embedded) and ``summary.json`` (the
validation matrix's decisions, the metrics shown, each stage's status). Missing stages are
reported as "not run", they do not stop the report.
"""
import sys

from common.cli import run_stage
from common.stages import folder, stage_dir
from common.io import atomic_path, write_json
from evaluation.report import load_compare_runs, load_run, render

STAGE = folder("16")


def main(cfg, args, out):
    run = load_run(cfg.output_dir, cfg)
    html_text, summary = render(run, cfg, load_compare_runs(cfg))
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(html_text, encoding="utf-8")
    write_json(out / "summary.json", summary)
    decisions = [f"{r['metric']}/{r['level']}/{r.get('pool', 'test')}: {r['decision']}"
                 for r in summary["validation_matrix"]]
    print(f"report written to {stage_dir(cfg, '16') / 'report.html'} ({summary['n_figures']} figures); "
          f"validation: {', '.join(decisions) or 'no criteria'}")
    print(summary["verdict"]["line"])


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="16"))
