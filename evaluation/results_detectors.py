"""docs/results.md's detector section: who each grid detector is and whether it learned.

One row per detector x seed (the cells of one upstream share it): its identity (the published weight
file's name and SHA-256 for an external detector or a probe, else the checkpoint trained here), its
optimiser steps, the raw detector score's frame AUC per pool with its person-cluster 95 % interval,
and the "detector did not learn" flag (training/learned.py), which is apart from the LR system's
degenerate flags. A shortcut control (``experiments.detectors.<name>.control: true``) is labelled as
such and kept out of the best/worst comparisons.
"""
from __future__ import annotations

POOLS = ("train", "val", "calib", "test")


def _fmt(x) -> str:
    from evaluation.results_doc import fmt
    return fmt(x)


def identity_text(ident: dict | None) -> str:
    if not ident:
        return "n/a"
    if ident.get("weights_sha256"):
        name = str(ident.get("weights", "")).rsplit("/", 1)[-1]
        return f"{ident.get('mode', 'external')}: `{name}` sha256 `{ident['weights_sha256'][:16]}`"
    sha = ident.get("checkpoint_sha256")
    return f"{ident.get('kind', 'trained here')}: `{ident.get('checkpoint', 'best.pt')}` sha256 `{(sha or '')[:16]}`"


def auc_text(rec: dict | None) -> str:
    if not rec or rec.get("auc") is None:
        return "n/a"
    ci = rec.get("ci95")
    return _fmt(rec["auc"]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")


def detector_rows(cells: list[dict]) -> list[dict]:
    """One entry per detector x seed (first frame-level cell of each)."""
    seen, out = set(), []
    for e in sorted(cells, key=lambda e: (e["detector"], e["seed"], e["cell"])):
        key = (e["detector"], e["seed"])
        if e["level"] != "frame" or key in seen:
            continue
        seen.add(key)
        out.append(e)
    return out


def detector_table(cells: list[dict]) -> list[str]:
    from evaluation.results_doc import _row
    rows = detector_rows(cells)
    if not rows:
        return ["_No detectors with a stage 04._", ""]
    head = ["detector", "seed", "identity", "steps"] + [f"raw AUC {p}" for p in POOLS] + ["detector flag"]
    out = [_row(head), _row(["---"] * len(head))]
    for e in rows:
        ident = e.get("detector_identity") or {}
        aucs = e.get("detector_auc") or {}
        name = e["detector"] + (" (shortcut control)" if e.get("control") else "")
        out.append(_row([name, e["seed"], identity_text(ident), _fmt(ident.get("steps")) if ident.get("steps") else "-"]
                        + [auc_text(aucs.get(p)) for p in POOLS] + [e.get("detector_flag") or ""]))
    rule = next((e["detector_learned"].get("rule") for e in rows if e.get("detector_learned")), None)
    cv = sorted({e["detector"] for e in rows if str(e.get("validation", "")).startswith("crossval")})
    return out + ["", "Raw AUC: the detector's own fake logit, frame level, fake as positive, with its person-cluster "
                  "95 % interval; a detector trained here was fitted on train (a probe on train + val), an external "
                  "one on none. " + (f"Flag: {rule}." if rule else ""), ""] + \
        ([f"Validated with every identity out of fold (`slr.validation: crossval`; its test figures pool all "
          f"calib + test identities): {', '.join(cv)}. The other cells: four pools, test persons only.", ""]
         if cv else [])


def learned_finding(cells: list[dict]) -> str | None:
    """How many cells' detectors did not learn, and whether every degenerate cell carries that flag."""
    frame = [e for e in cells if e["level"] == "frame"]
    if not frame:
        return None
    not_learned = sorted({e["detector"] for e in frame if e.get("detector_flag")})
    degenerate = [e for e in frame if e["test"].get("flags")]
    unexplained = [e["cell"] for e in degenerate if not e.get("detector_flag")]
    s = (f"Detectors that did not learn (raw AUC interval on val or calib not above chance): "
         f"{', '.join(not_learned) if not_learned else 'none'}.")
    if degenerate:
        s += (f" {len(degenerate)} frame-level cell(s) have a degenerate LR system; "
              + (f"{len(unexplained)} of them without the detector flag: {', '.join(unexplained)}."
                 if unexplained else "each of them carries the 'detector did not learn' flag."))
    return s
