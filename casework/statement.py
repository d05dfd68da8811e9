"""The statement of one face: headline (bounded LR only), conditions, technical annex.

ENFSI (2015) evaluative reporting, as ``../shared/docs/lr_validation.md`` section 6 asks: the
headline holds the propositions (with the relevant population), the bounded LR, its log10 and the
verbal equivalent with the scale's source; nothing else. The unbounded LLR, the score and its
percentiles under the two propositions' calib scores and the detector's fake probability go in
the technical annex, each labelled "not for reporting". Outside the validated conditions the
headline gives no LR ("outside the validated conditions: no LR is given") unless the override is
set, in which case the LR is given with the warning above it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from common.config import ConfigError

NOT_FOR_REPORTING = "not for reporting"
OUTSIDE = "outside the validated conditions: no LR is given"


def verbal(llr: float, scale: Sequence, hypotheses: dict) -> str:
    """The verbal equivalent of a log10 LR on ``scale`` = [[lowest |LLR|, words with {h}], ...].

    The supported proposition is Hp when LLR > 0, Hd when LLR < 0 (ENFSI 2015: the same words for
    LR and 1/LR). Thresholds are inclusive at the lower end.
    """
    try:
        rows = sorted(((float(t), str(w)) for t, w in scale), key=lambda r: r[0])
    except (TypeError, ValueError):
        raise ConfigError("evidence.verbal_scale must be a list of [lowest |log10 LR|, words] pairs") from None
    if not rows or rows[0][0] > 0:
        raise ConfigError("evidence.verbal_scale must start at |log10 LR| = 0")
    if not np.isfinite(llr):
        raise ValueError(f"log10 LR {llr} is not finite; bound it before putting it into words")
    words = rows[0][1]
    for t, w in rows:
        if abs(llr) >= t:
            words = w
    h = hypotheses.get("hp" if llr > 0 else "hd", "Hp" if llr > 0 else "Hd")
    return words.replace("{h}", h)


def fmt_lr(lr: float) -> str:
    """An LR for reading: 3 significant digits, no exponent between 0.001 and 10^6."""
    if lr >= 1e6 or lr < 1e-3:
        return f"{lr:.3g}"
    return f"{lr:.3g}" if lr < 1000 else f"{lr:,.0f}"


def headline(lr: float, llr: float, words: str, hyps: dict) -> str:
    """One sentence: how much more probable the findings are under one proposition than the other."""
    if abs(llr) < 0.005:
        return (f"The findings are about equally probable if {hyps['hp']} and if {hyps['hd']} "
                f"(LR = {fmt_lr(lr)}, log10 LR = {llr:+.2f}): {words}.")
    if llr >= 0:
        rel = f"{fmt_lr(lr)} times more probable if {hyps['hp']} than if {hyps['hd']}"
    else:
        rel = f"{fmt_lr(1.0 / lr)} times more probable if {hyps['hd']} than if {hyps['hp']}"
    return (f"The findings are {rel} (LR = {fmt_lr(lr)}, log10 LR = {llr:+.2f}): "
            f"{words}.")


def interval_sentence(lo: float, hi: float, scale: Sequence, hyps: dict) -> str:
    """The 95 % interval of the log10 LR (slr.case_interval) and whether it spans more than one verbal
    category; the verbal equivalent itself follows the bounded point value."""
    text = (f"95 % interval of the log10 LR (person-cluster bootstrap of the LR system's fit): "
            f"[{lo:+.2f}, {hi:+.2f}] (LR {fmt_lr(10.0 ** lo)} to {fmt_lr(10.0 ** hi)}).")
    w_lo, w_hi = verbal(lo, scale, hyps), verbal(hi, scale, hyps)
    if w_lo != w_hi:
        text += (f" The interval spans more than one verbal category (from \"{w_lo}\" to \"{w_hi}\"); the "
                 f"verbal equivalent above follows the LR itself.")
    return text


def percentile(values: np.ndarray, x: float) -> float | None:
    """Percent of ``values`` at or below ``x`` (empirical CDF, %); None without values."""
    v = np.asarray(values, dtype=np.float64)
    return None if not v.size else float(100.0 * np.mean(v <= x))


def annex(system, level: str, score: float, llr_unbounded: float | None, prob: float, logit: float,
          per_frame: list | None = None) -> dict:
    """The technical annex of one result: each value with its ``label``: "not for reporting"."""
    hp, hd = system.calib_scores(level)
    items = {
        "log10_lr_unbounded": llr_unbounded,
        "score": float(score),
        "score_name": (system.score_spec or {}).get("name", "cosine_centroid"),
        "score_percentile_hp_calib": percentile(hp, score),
        "score_percentile_hd_calib": percentile(hd, score),
        "fake_probability": float(prob),
        "fake_logit": float(logit),
    }
    out = {k: {"value": v, "label": NOT_FOR_REPORTING} for k, v in items.items()}
    out["level"] = level
    out["n_calib_hp"], out["n_calib_hd"] = int(len(hp)), int(len(hd))
    if per_frame is not None:
        out["per_frame"] = {"value": per_frame, "label": NOT_FOR_REPORTING}
    return out
