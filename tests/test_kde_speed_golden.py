"""The fast KDE paths (issue 21, speed) give the numbers of the code before them.

Golden values captured from main at 452fb5e (before the speed work), stored as numbers: the LR
system fitted (kde, 5 person-grouped cross-fitting folds, grouped bandwidth CV) on a fixed synthetic
set and on the real paper features (cosine-to-real-centroid scores of every frame of
paper_srm_features.npz, persons by the UADFV rule); bandwidths, model and final LLRs at probe
scores, cross-fitted LLRs, the CV log-likelihood tables, all within 1e-9. A grouped bandwidth CV on
5,000 scores takes both the exact and the FFT-grid path (the grid past 10^6 kernel terms): its 40
CV values within 1e-9 relative and the same bandwidth.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from preprocessing.splits import person_of
from slr import kde as kde_mod
from slr.io import ScoreSet
from slr.models import CV_EXACT_BUDGET, grouped_cv_bandwidth, heldout_loglik
from slr.scores import score_values
from slr.settings import Settings
from slr.system import fit_level_model

REPO = Path(__file__).resolve().parents[1]

GOLDEN = {
    "synthetic": {
        "bw": {"hp": 0.2772037553702527, "hd": 0.21332672723591714},
        "bounds": [-1.4600000000000002, 1.4500000000000004],
        "probe": [-3.2308290615621424, -1.5808176425474971, -1.1536720885808778, -0.7850248517894906,
            -0.39100416264949006, 0.00996967752156628, 0.4019724612640113, 0.7797973572289427,
            1.1469637439044227, 1.594944801349789, 3.075247837289753, -3.7308290615621424, 3.575247837289753],
        "llr_model": [-7.936838476956681, -1.8090301690694406, -1.5794021024792047, -1.0844100951979343,
            -0.577485001655826, 0.028790411838439223, 0.6066708547322008, 1.0475954885268697,
            1.523481401681693, 2.783106396263583, 17.389325310816055, -11.692714833897346, 26.54885267068173],
        "llr": [-1.4600000000000002, -1.4600000000000002, -1.4600000000000002, -1.0844100951979343,
            -0.577485001655826, 0.028790411838439223, 0.6066708547322008, 1.0475954885268697,
            1.4500000000000004, 1.4500000000000004, 1.4500000000000004, -1.4600000000000002,
            1.4500000000000004],
        "cf": [3.942194603585061, -0.1809217644118346, 1.5203696250349288, -1.2712274200998293,
            -1.8913111286182787, 1.8165242528938532, -0.22202413965678264, 0.269045451502372,
            2.0513869294112745, -0.5203874849130157, 0.10182842073801757, 0.054519187227025756,
            -0.23671779874425225, 1.2739933099704586, -0.1350072877202606, -1.9216937445734579],
        "cv_hp": [-1311.4869574986874, -1006.4696407623993, -778.8381520022587, -608.9647067722393,
            -482.20424225099885, -387.62557989858203, -317.0655714739684, -264.4293501233981,
            -225.16915855757466, -195.88945564298803, -174.05103484813708, -157.7568481595405,
            -145.59421320392784, -136.51191983517015, -129.72580663235382, -124.65082504225506,
            -120.85312754710299, -118.01354822571679, -115.8967468187017, -114.32532384553977,
            -113.16162099395197, -112.2987344037281, -111.65878329848651, -111.193002651506,
            -110.88022520224914, -110.72602132299997, -110.76400568123438, -111.05813093747949,
            -111.7045594262141, -112.83137719057092, -114.59499885148746, -117.17121105465826,
            -120.73721661168354, -125.44530874367024, -131.395859126316, -138.61982987011785,
            -147.07714536348703, -156.66982778890483, -167.2631091136705, -178.70691184528567],
        "cv_hd": [-186.6672321943392, -167.6584438898746, -153.53905403723442, -143.06924198414373,
            -135.31456357849578, -129.57064642076892, -125.31096453252412, -122.14878180742821,
            -119.80698757442181, -118.08693300978476, -116.83567921613465, -115.92576048319935,
            -115.25273578222148, -114.73933736070994, -114.3369968925839, -114.02241371246191,
            -113.7881429463126, -113.62988217023073, -113.53723782045756, -113.49191872820602,
            -113.47210181568292, -113.45996583810852, -113.44901677399628, -113.44777687378607,
            -113.47881492571287, -113.57672892236592, -113.79107817078429, -114.1949989462533,
            -114.89418655919344, -116.0311038904193, -117.7803448048742, -120.33385420928758,
            -123.87849942431248, -128.56978322637195, -134.50745530239573, -141.72081186644385,
            -150.1687241371179, -159.7530503695004, -170.33926941129224, -181.77748741379378],
        "cf_step": 133, "cf_sum": 445.577383571322,
    },
    "paper": {
        "bw": {"hp": 0.03260802578036646, "hd": 0.02276387487252581},
        "bounds": [-1.3599999999999999, 1.62],
        "probe": [0.17902383265199887, 0.25587629650556687, 0.29697529388362043, 0.34012770692801886,
            0.40587717496694176, 0.6729585988292777, 0.9451977164347853, 0.9759587508025356,
            0.9845009393729248, 0.9900453306786025, 0.9965143742148052, -0.32097616734800116,
            1.4965143742148053],
        "llr_model": [-5.23411122901439, -3.3142354298033747, -2.7303077238888043, -2.7408467229361335,
            -1.928767284637272, -0.4905517218192874, 2.802321043530873, 3.867124444899767, 4.254351902998327,
            4.525372950828065, 4.8607179429770575, 22.788260818159443, 86.9402861582451],
        "llr": [-1.3599999999999999, -1.3599999999999999, -1.3599999999999999, -1.3599999999999999,
            -1.3599999999999999, -0.4905517218192874, 1.62, 1.62, 1.62, 1.62, 1.62, 1.62, 1.62],
        "cf": [-3.577001567979253, 4.379174600301997, -2.776523954737333, -2.887492074817431, 3.4038174730046227,
            -1.458512350399653, -2.596589594861796, 3.669037291659932, -38.870826024552684,
            -2.4825417746346723, -3.4305107626954214, -2.6426399691801166, 4.576673458960586,
            -2.5813030650013964, -0.9401440642674715, -0.7986456229345609],
        "cv_hp": [-58284.8602732401, -43427.90166024618, -32338.994552381024, -24062.548759134577,
            -17885.31715574075, -13274.94748679806, -9834.109559120076, -7266.246800320985,
            -5350.011271282468, -3920.185711095027, -2853.4492153689375, -2057.7590302744597,
            -1464.4313643298913, -1022.231954391487, -692.9558581659743, -448.11586640757406,
            -266.46730534420396, -132.16151259512765, -33.367438966116154, 38.75717034005787, 90.832340786082,
            127.82302783031221, 153.4547418585798, 170.5196823661087, 181.10577158896604, 186.76433054477215,
            188.633029224935, 187.53519364985632, 184.06219625394993, 178.64332305943486, 171.6027874995121,
            163.18568892201455, 153.56714154105023, 142.8877815456392, 131.292858696627, 118.93821533620996,
            105.93991976779894, 92.302832022454, 77.98890696354563, 63.021762643803],
        "cv_hd": [-423.3590258318508, -285.02813248138057, -181.84210147674108, -104.86959328767496,
            -47.4588769429259, -4.6488535902096, 27.27152164384314, 51.079528836862835, 68.84561041698103,
            82.10514769878611, 91.99439285283206, 99.35844083800565, 104.83216395457107, 108.89634589475108,
            111.91660809449067, 114.1693291064425, 115.85741562323626, 117.12081197380166, 118.04672993230619,
            118.68304660356435, 119.05310280963525, 119.16564594061326, 119.01697029901023,
            118.58861653829024, 117.84545724485884, 116.73518760367638, 115.1877472064094, 113.11618218223683,
            110.42213085409028, 107.00438043854729, 102.7644483229002, 97.60724631698977, 91.44093053849635,
            84.17705558881178, 75.73462158054873, 66.05743377500163, 55.13941900440783, 43.03724790401935,
            29.861082274116292, 15.751731047555603],
        "cf_step": 162, "cf_sum": -267255.67802809045,
    },
}
CV5000_BEST = 0.1521494421039494
CV5000 = [-771.3895060703281, -711.7710789346077, -667.2209123790774, -633.9436482322892, -609.103502664035,
          -590.5748450439401, -576.7566663729366, -566.4406074086941, -558.7205940841915, -552.9275367634998,
          -548.5751772906375, -545.3097710142073, -542.8665383789512, -541.0413548797973, -539.6776390541274,
          -538.659288313159, -537.9034116741295, -537.3517786670709, -536.962944648169, -536.7060537390303,
          -536.5594322667401, -536.5152420456645, -536.5881991421887, -536.8239573900789, -537.3098831050776,
          -538.1952296746374, -539.7216438381777, -542.2568816317, -546.323710902515, -552.6148042972584,
          -561.9777073358222, -575.352678265451, -593.6608940117434, -617.6666647811053, -647.8530566813341,
          -684.3528220024892, -726.953093111019, -775.1640659710903, -828.3199158307996, -885.6815275843317]


def synthetic(n_items: int = 2000, seed: int = 0, frames: int = 10) -> ScoreSet:
    """benchmarks/bench_lr_system.py's generator: persons with a real and a fake video of 10 frames."""
    spec = importlib.util.spec_from_file_location("bench_lr_system", REPO / "benchmarks" / "bench_lr_system.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.generate(np.random.default_rng(seed), n_items, "p", frames)


def paper_scores(path) -> ScoreSet:
    d = np.load(path)
    feats, labels = d["features"].astype(np.float64), d["labels"].astype(np.int64)
    videos = np.array([p.split("/")[2] for p in d["image_paths"].astype(str)])
    scores = score_values("cosine_centroid", features=feats, centroid=feats[labels == 0].mean(0))
    return ScoreSet(scores, labels, videos, None, "<paper>", person_ids=np.array([person_of(v) for v in videos]))


def _check_fit(s: ScoreSet, g: dict) -> None:
    lm = fit_level_model(s, Settings(model="kde", bootstrap_n=0, video_level=False, case_interval_n=0), "frame")
    assert lm.bandwidth() == pytest.approx(g["bw"], rel=1e-12, abs=0)
    np.testing.assert_allclose([lm.lower_log10, lm.upper_log10], g["bounds"], rtol=0, atol=1e-9)
    parts = lm.llr_parts(g["probe"])
    np.testing.assert_allclose(parts["model"], g["llr_model"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(parts["llr"], g["llr"], rtol=0, atol=1e-9)
    cf = lm.calib["cf_llr_model"]
    np.testing.assert_allclose(cf[::g["cf_step"]], g["cf"], rtol=0, atol=1e-9)
    assert float(np.sum(cf)) == pytest.approx(g["cf_sum"], rel=0, abs=1e-8)
    for key in ("hp", "hd"):
        np.testing.assert_allclose(lm.model.details[key]["score"], g[f"cv_{key}"], rtol=1e-12, atol=1e-9)


def test_fit_on_synthetic_set_matches_the_code_before_the_speed_work():
    _check_fit(synthetic(), GOLDEN["synthetic"])


def test_fit_on_real_paper_features_matches_the_code_before_the_speed_work(paper_features):
    _check_fit(paper_scores(paper_features), GOLDEN["paper"])


def test_grouped_bandwidth_cv_on_both_paths_matches_the_code_before():
    s = synthetic(10_000)
    x, g = s.scores[s.labels == 0], s.videos()[s.labels == 0]
    grid = np.geomspace(0.01, 3, 40) * np.std(x, ddof=1)
    best, table = grouped_cv_bandwidth(x, g, grid, 10, 1024)
    assert best == CV5000_BEST
    np.testing.assert_allclose(table["cv_loglik"], CV5000, rtol=1e-9, atol=0)


def test_heldout_loglik_equals_the_per_bandwidth_kde_on_both_paths():
    """The shared-search CV sum is the KDE's own ln_pdf sum, bandwidth by bandwidth (exact and grid)."""
    rng = np.random.default_rng(3)
    tr, te = rng.normal(size=4000), rng.standard_t(3, size=2500)
    grid = np.geomspace(0.005, 2.0, 12)
    fast = heldout_loglik(tr, te, grid, CV_EXACT_BUDGET)
    ref, methods = [], set()
    for bw in grid:
        est = kde_mod.GaussianKDE1D(exact_budget=CV_EXACT_BUDGET).fit(tr, bw)
        ref.append(float(np.sum(est.ln_pdf(te))))
        methods.add("grid" if est.last_method_["grid"] else "exact")
    assert methods == {"grid", "exact"}
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=0)


def test_factorised_block_sums_equal_the_shifted_kernel(monkeypatch):
    """exp(-a^2) exp(2ab) exp(-b^2) per block gives the shifted log-sum-exp's ln f to 1e-12 (bulk and
    far tails, several bandwidths); the factorised path is really taken, and not for the far tails."""
    rng = np.random.default_rng(5)
    data, x = rng.normal(size=3000), np.concatenate([rng.normal(size=2000), [-40.0, -9.0, 7.5, 55.0]])
    rows = []
    real = kde_mod.GaussianKDE1D._factor_sum

    def spy(xb, *args):
        rows.extend(xb.tolist())
        return real(xb, *args)

    for bw in (0.01, 0.1, 0.5):
        kde = kde_mod.GaussianKDE1D(exact_budget=1e12).fit(data, bw)
        monkeypatch.setattr(kde_mod.GaussianKDE1D, "_factor_sum", staticmethod(spy))
        fast = kde.ln_pdf(x)
        monkeypatch.setattr(kde_mod.GaussianKDE1D, "_FACTOR_A", 0.0)     # every block shifted
        ref = kde.ln_pdf(x)
        monkeypatch.undo()
        np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12)
    assert len(rows) > 3000 and not {-40.0, 55.0} & set(rows)


@pytest.mark.parametrize("half,ratio", [(1200, 0.01), (1201, 0.010000000000000002), (37, 0.3), (5, 0.01)])
def test_grid_smoothing_is_fftconvolve_bit_for_bit(half, ratio):
    """The cached-kernel smoothing of the grid path gives scipy's fftconvolve's very bits (so the grid's
    trusted / untrusted cut, and with it every CV value, is unchanged), cache hit or not."""
    import scipy.signal

    from slr.kde_grid import smooth_counts

    rng = np.random.default_rng(half)
    k = np.arange(-half, half + 1) * ratio
    for m in (40, 3000, 3001, 25_000):
        counts = rng.random(m) * (rng.random(m) < 0.3)
        want = scipy.signal.fftconvolve(counts, np.exp(-0.5 * k * k), mode="same")
        for _ in range(2):
            assert np.array_equal(smooth_counts(counts, half, ratio), want)
