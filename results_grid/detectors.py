"""What a results-grid cell records about its detector: who it is and whether it learned.

- ``identity``: stage 03's own record of the detector when it has one (an external or probed detector
  names its weight file, SHA-256, source and licence), else "trained here"; always the SHA-256 of the
  checkpoint stage 04 scored with.
- ``auc`` / ``learned``: the raw detector score's frame AUC per pool with its person-cluster interval
  and the "detector did not learn" verdict (training/learned.py), as stage 04 wrote them in its
  summary; measured here from stage 04's dumps when the summary predates them.

A cell whose detector did not learn is flagged apart from the LR system's degenerate flags.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from common.io import InputError, read_json
from common.stages import folder
from training import learned

IDENTITY_KEYS = ("detector_identity", "identity")     # stage 03 summary keys naming an external detector


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _summary(run_dir: Path, stage_name: str) -> dict:
    p = Path(run_dir) / stage_name / "summary.json"
    try:
        s = read_json(p) if p.is_file() else {}
    except (InputError, ValueError):
        return {}
    return s if isinstance(s, dict) else {}


def detector_identity(run_dir: Path, s03: dict, s04: dict) -> dict:
    """``{kind, checkpoint, checkpoint_sha256, ...}``: stage 03's identity record when it wrote one."""
    out: dict = {}
    for key in IDENTITY_KEYS:
        if isinstance(s03.get(key), dict):
            out.update(s03[key])
            break
    out.setdefault("kind", "trained here from scratch" if s03.get("history") else "unknown")
    ck = s04.get("checkpoint")
    if ck:
        p = Path(ck)
        if not p.is_file():      # the published path of an upstream run: seen through the cell's link
            p = Path(run_dir) / folder("03") / p.name
        out["checkpoint"] = p.name
        out["checkpoint_sha256"] = _sha256(p)
    if s03.get("history"):
        out["epochs"] = s03.get("epochs")
        out["n_train"] = s03.get("n_train")
        out["steps"] = s03.get("steps")
    return out


def detector_record(run_dir: Path) -> dict | None:
    """``{identity, auc: {pool: {auc, ci95, n_frames, n_persons}}, learned: verdict}`` of the run's
    detector, or None without a stage 04 (a feature-file pseudo-detector)."""
    s04 = _summary(run_dir, folder("04"))
    if not s04:
        return None
    s03 = _summary(run_dir, folder("03"))
    aucs, verdict = s04.get("detector_auc"), s04.get("detector_learned")
    if not isinstance(aucs, dict) or not isinstance(verdict, dict):
        defaults = learned.settings(_Defaults())
        aucs = learned.pool_aucs_from_dumps(Path(run_dir) / folder("04"), s04.get("pools") or [],
                                            defaults["bootstrap_n"], defaults["seed"])
        verdict = learned.verdict(aucs, defaults["margin"])
    return {"identity": detector_identity(run_dir, s03, s04), "auc": aucs, "learned": verdict}


class _Defaults:
    """The schema's defaults of ``training.learned`` (a summary written before the check existed)."""

    def get(self, key):
        from common.config import config_from_dict
        return config_from_dict({}, "schema defaults").get(key)


# ------------------------------------------------------------------------- the page's detector table
POOLS = ("train", "val", "calib", "test")


def _fmt(x) -> str:
    from results_grid.tables import fmt
    return fmt(x)


def identity_text(ident: dict | None) -> str:
    if not ident:
        return "n/a"
    if ident.get("weights_sha256"):         # published weights (a stage-04 record names the model, not the file)
        name = str(ident.get("weights") or "").rsplit("/", 1)[-1] or str(ident.get("name", ""))
        return f"{ident.get('mode', 'external')}: `{name}` sha256 `{ident['weights_sha256'][:16]}`"
    sha = ident.get("checkpoint_sha256")
    name = str(ident.get("checkpoint") or "best.pt").rsplit("/", 1)[-1]    # never a machine's absolute path
    return f"{ident.get('kind', 'trained here')}: `{name}` sha256 `{(sha or '')[:16]}`"


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
        if e["level"] != "frame" or key in seen or e.get("fusion"):     # a fused cell: fusion_table
            continue
        seen.add(key)
        out.append(e)
    return out


def detector_table(cells: list[dict]) -> list[str]:
    from results_grid.tables import _row
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


NO_MEMBER_IDENTITY = ("identity not recorded: its stage-04 summary predates the record, so casework refuses this "
                      "fused system")


def fusion_table(cells: list[dict]) -> list[str]:
    """Fused cells (``experiments.fusions``): members with their detector identities and the choice."""
    from results_grid.tables import _row
    rows = [e for e in cells if e.get("fusion") and e["level"] == "frame"]
    if not rows:
        return []
    head = ["fused cell", "members (identity)", "CV Cllr on calib (bits)", "fusion used"]
    out = ["## Fused cells: members and the fusion's choice", "", _row(head), _row(["---"] * len(head))]
    for e in sorted(rows, key=lambda e: e["cell"]):
        f = e["fusion"]
        ids = f.get("identities") or {}
        members = "; ".join(f"{m} ({identity_text(ids[m]) if ids.get(m) else NO_MEMBER_IDENTITY})" for m in f["members"])
        fused = min((f.get("fusion_cllr") or {}).values(), default=None)
        cv = ", ".join(f"{m} {_fmt(v)}" for m, v in (f.get("member_cllr") or {}).items()) + f", fusion {_fmt(fused)}"
        out.append(_row([f"`{e['cell']}`", members, cv, "yes" if f.get("fusion_used") else
                         f"no: {f.get('best_member')} alone"]))
    return out + ["", "A fused cell (`slr.score: fusion`) fuses its members' logits by logistic regression fitted on "
                  "calib (penalty and members chosen by cross-validation over whole persons on calib), then fits the "
                  "LR system on the fused score like any other cell; its figures are in the tables below, beside "
                  "the single detectors'.", ""]


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
