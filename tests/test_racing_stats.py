"""nas.search.racing_stats on synthetic races whose truth is known, plus exact checks.

Synthetic results: image difficulty z_i ~ N(2.5, 2.5^2) shared by all points (correlated
per-image difficulty), a seed effect g_s shared by all points (paired seeds), optionally a
point x seed interaction h_ps (training luck that pairing cannot remove) and a point x
image effect e_pi; correct[p, s, i] ~ Bernoulli(sigmoid(z_i + b_p + g_s + h_ps + e_pi)),
with b_p chosen so that point p's expected accuracy is the one asked for.
"""
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from nas.search import racing_stats as rs

ALPHA = 0.05
_GRID = np.linspace(-6, 6, 2001)
_W = np.exp(-0.5 * _GRID ** 2) / np.exp(-0.5 * _GRID ** 2).sum()


def _offset(acc: float) -> float:
    """Logit shift b with E[sigmoid(z + b)] = acc for z ~ N(2.5, 2.5^2) (bisection)."""
    lo, hi = -5.0, 5.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (_W * expit(2.5 + 2.5 * _GRID + mid)).sum() < acc else (lo, mid)
    return (lo + hi) / 2


def simulate(rng, accs, seeds=3, images=5000, seed_sd=0.3, inter_sd=0.0, img_sd=0.0):
    """Bool (points, seeds, images) for points of expected accuracies ``accs``."""
    b = np.array([_offset(a) for a in accs])[:, None, None]
    p = len(accs)
    logit = (rng.normal(2.5, 2.5, images)[None, None, :] + b
             + rng.normal(0, seed_sd, seeds)[None, :, None]
             + rng.normal(0, inter_sd, (p, seeds))[:, :, None]
             + rng.normal(0, img_sd, (p, images))[:, None, :])
    return rng.random(logit.shape) < expit(logit)


def _race(x, **kw):
    return rs.race_round({f"p{i}": x[i] for i in range(len(x))}, alpha=ALPHA, **kw)


def _max_false(n: int) -> int:
    """Rejections allowed in n null simulations: the 99.9% binomial quantile at ALPHA."""
    return int(stats.binom.ppf(0.999, n, ALPHA))


# ------------------------------------------------------------------ truth-based checks

def test_point_two_points_worse_is_dropped():
    """16 points (15 at 0.80, one at 0.78), 3 seeds x 5,000 images, seed effect,
    point x seed interaction and point x image effects: the 0.78 point goes in >= 17/20
    races, and (almost) none of the 0.80 points do."""
    rng = np.random.default_rng(11)
    worse_dropped = equal_dropped = 0
    for _ in range(20):
        r = _race(simulate(rng, [0.80] * 15 + [0.78], inter_sd=0.05, img_sd=0.3))
        worse_dropped += "p15" in r.dropped
        equal_dropped += len([k for k in r.dropped if k != "p15"])
    assert worse_dropped >= 17  # measured power 0.93 (150 races), see the report
    assert equal_dropped <= 2


def test_identical_points_not_told_apart_more_than_alpha():
    """200 races of two identical points (same per-image probabilities, independent draws,
    a point x seed interaction): a point is dropped in <= alpha + binomial tolerance."""
    rng = np.random.default_rng(12)
    rejected = sum(bool(_race(simulate(rng, [0.8, 0.8], inter_sd=0.1)).dropped)
                   for _ in range(200))
    assert rejected <= _max_false(200)


def test_many_identical_points_familywise():
    """6 identical points: dropping any of them (the best is picked from the data, 5
    comparisons) happens in <= alpha + tolerance of 60 races."""
    rng = np.random.default_rng(13)
    rejected = sum(bool(_race(simulate(rng, [0.8] * 6, inter_sd=0.05)).dropped)
                   for _ in range(60))
    assert rejected <= _max_false(60)


def test_pairing_removes_shared_seed_and_image_effects():
    """A large seed effect shared by both points cancels: the 2-point paired CI of a 2-point
    gap is far narrower than the unpaired spread of either point's accuracy."""
    rng = np.random.default_rng(14)
    x = simulate(rng, [0.80, 0.78], seed_sd=1.0)
    diff, lo, hi = rs.diff_ci(x[0], x[1])
    _, alo, ahi = rs.mean_ci(x[0])
    assert lo < diff < hi < 0
    assert (hi - lo) < 0.5 * (ahi - alo)
    assert -0.03 < diff < -0.01


# ------------------------------------------------------------------ exact checks

def test_paired_test_hand_example():
    """2 seeds x 4 images, d = other - best = [[0,-1,0,0],[-1,-1,0,0]] (mean -3/8): the
    standard error is the crossed-ANOVA formula written out here independently."""
    best = np.array([[1, 1, 0, 1], [1, 1, 1, 0]], bool)
    other = np.array([[1, 0, 0, 1], [0, 0, 1, 0]], bool)
    d = other.astype(float) - best
    s, n = d.shape
    g, bs, bi = d.mean(), d.mean(1), d.mean(0)
    ms_seed = n * ((bs - g) ** 2).sum() / (s - 1)
    ms_img = s * ((bi - g) ** 2).sum() / (n - 1)
    ms_res = ((d - bs[:, None] - bi[None] + g) ** 2).sum() / ((s - 1) * (n - 1))
    var = (ms_res + max(ms_seed - ms_res, 0) + max(ms_img - ms_res, 0)) / (s * n)
    r = rs.paired_test(best, other)
    assert r.diff == pytest.approx(-3 / 8)
    assert r.se == pytest.approx(np.sqrt(var))
    assert r.p_value == pytest.approx(stats.t.cdf(r.t, r.df))
    assert r.ci_low < r.diff < r.ci_high


def test_holm_hand_example():
    """p = (0.01, 0.04, 0.03, 0.005), m = 4: sorted 0.005*4=0.02, 0.01*3=0.03,
    0.03*2=0.06, 0.04*1=0.04 -> running max 0.06; back in input order."""
    assert rs.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert rs.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 0.5*2 capped, then running max


def test_race_round_structure_and_determinism():
    rng = np.random.default_rng(15)
    x = simulate(rng, [0.80, 0.79, 0.70])
    data = {"a": x[1], "b": x[0], "c": x[2]}
    r1, r2 = rs.race_round(data), rs.race_round(dict(data))
    assert r1 == r2
    assert r1.best == "b" and r1.points["b"].keep and list(r1.points) == ["a", "b", "c"]
    assert not r1.points["c"].keep and r1.points["c"].p_adjusted <= ALPHA
    assert r1.points["c"].ci_high < 0
    for k in ("a", "c"):
        d = r1.points[k]
        assert d.p_adjusted >= d.p_raw and d.ci_low <= d.diff <= d.ci_high
    two = rs.race_round({"a": x[1], "b": x[0]}, correction="holm")
    assert two.points["a"].p_adjusted == pytest.approx(2 * two.points["a"].p_raw)
    with pytest.raises(ValueError):
        rs.race_round(data, correction="bonferoni")


def test_two_seeds_intervals_pool_the_seed_term_and_stay_inside_0_100():
    """Issue #23: with 2 seeds a point's own seed term has 1 degree of freedom (an interval
    from -13% to 127%); pooled over the 16 points of a round it is useful, and clipped."""
    rng = np.random.default_rng(3)
    x = simulate(rng, [0.4, 0.5, 0.6, 0.7] * 4, seeds=2, images=287, seed_sd=0.5, inter_sd=0.5)
    own = [rs.mean_ci(p) for p in x]
    pooled = [rs.mean_ci(p, seed_term=rs.pooled_seed_term(list(x))) for p in x]
    assert max(hi - lo for _, lo, hi in pooled) < 0.3 < max(hi - lo for _, lo, hi in own)
    assert all(0.0 <= lo <= m <= hi <= 1.0 for m, lo, hi in own + pooled)
    term = rs.pooled_seed_term(list(x))
    assert term.df_ps == 16 and term.scale == 1.0
    d, lo, hi = rs.diff_ci(x[0], x[3], seed_term=rs.seed_interaction(list(x)))
    assert -1.0 <= lo < d < hi <= 1.0 and d > 0.15
    perfect = np.ones((2, 50), dtype=bool)
    perfect[0, :3] = False
    assert rs.mean_ci(perfect)[2] == 1.0  # never above 100%


def test_mean_ci_per_seed_accuracies():
    acc = np.array([0.80, 0.82, 0.81])
    m, lo, hi = rs.mean_ci(acc)
    half = stats.t.ppf(0.975, 2) * acc.std(ddof=1) / np.sqrt(3)
    assert (m, lo, hi) == pytest.approx((0.81, 0.81 - half, 0.81 + half))


@pytest.mark.parametrize("x,y", [
    ([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]),
    ([0.5, 0.7, 0.7, 0.2, 0.9, 0.9, 0.1], [0.6, 0.8, 0.5, 0.5, 0.95, 0.7, 0.2]),
    ([3, 3, 3, 1, 2], [1, 2, 3, 4, 5]),
])
def test_rank_correlations_match_scipy(x, y):
    assert rs.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert rs.kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_top_k_overlap_and_curve_calibration():
    cheap = [0.9, 0.8, 0.7, 0.6, 0.5]
    full = [0.5, 0.8, 0.9, 0.6, 0.7]
    assert rs.top_k_overlap(cheap, full, 2) == 0.5      # top2 cheap {0,1}, full {2,1}
    assert rs.top_k_overlap(full, full, 3) == 1.0
    curves = {"a": [0.1, 0.5, 0.9], "b": [0.2, 0.4, 0.8], "c": [0.3, 0.3, 0.7], "d": [0.9]}
    early = rs.curve_calibration(curves, 1)                # d stopped early: left out
    assert early.n_points == 3 and early.last_epoch == 3
    assert early.spearman == pytest.approx(-1.0) and early.kendall_tau == pytest.approx(-1.0)
    assert rs.curve_calibration(curves, 2).spearman == pytest.approx(1.0)


def test_a_race_drops_a_clearly_worse_point_early_and_keeps_equal_ones():
    from nas.search.racing import race

    rng = np.random.default_rng(7)
    seeds, images = 3, 4000
    difficulty = rng.uniform(0.4, 0.95, images)  # shared by every point

    def trained(level: float) -> dict:
        # accuracy grows with the epoch; the point's level shifts every image's chance
        return {e: rng.random((seeds, images)) < np.clip(difficulty * (0.7 + 0.1 * e) + level, 0, 1)
                for e in (1, 2, 4)}

    correct = {"good": trained(0.0), "twin": trained(0.0), "bad": trained(-0.10)}
    out = race(correct, rungs=[1, 2, 4])
    assert out.dropped["bad"].rung == 1 and out.dropped["bad"].lost_to in ("good", "twin")
    assert set(out.survivors) == {"good", "twin"}
    assert out.epochs_full == 3 * seeds * 4 and out.epochs_used == seeds * (1 + 4 + 4)
    assert out.ranking({"good": 0.8, "twin": 0.79})[-1] == "bad"
