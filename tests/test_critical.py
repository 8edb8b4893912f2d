"""The edge of chaos (theory.critical) against an independent scipy reference, activation by activation.

The reference is written here from the definitions alone, with scipy and the ``math`` module (no JAX,
no jaxinit code): phi and phi' in closed form, Gaussian expectations by ``scipy.integrate.quad``
(epsrel 1e-12), q* as the fixed point the length map reaches from q0 = 1 (bracketed in the direction
the map moves q, then ``brentq``), chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2].

Tolerances: a returned critical point must have |chi_1 - 1| <= 1e-8 by the reference (the library
promises CRITICAL_TOL = 1e-9; the reference's own error is ~1e-11, so 1e-8 leaves a margin and still
fails any of the wrong points reported in issue 11, which miss by more than 0.05). Where the library
says there is no edge of chaos, the reference must find chi_1 - 1 changing sign only across a jump:
brentq on chi_1(sigma_w^2) - 1 converges to the sign change, and there chi_1 on the two sides, 1e-7
apart in sigma_w^2, must differ from 1 by more than 1e-3 on at least one side (a continuous crossing
changes chi_1 by ~1e-7 there). The reference calls q* = 0 anything below 1e-12 (its quadrature cannot
resolve V(q) - q below that).
"""

from __future__ import annotations

import math
import warnings

import pytest
from scipy import integrate, optimize

from jaxinit import theory

LAMBDA, ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717  # SELU
Q_ZERO, Q_BIG = 1e-12, 1e12


def _sig(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _sech2(x):
    return 0.0 if abs(x) > 300 else 1 / math.cosh(x) ** 2


def _cdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _pdf(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


# name -> (phi, phi')
PHI = {
    "tanh": (math.tanh, _sech2),
    "erf": (math.erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x)),
    "sigmoid": (_sig, lambda x: _sig(x) * _sig(-x)),
    "relu": (lambda x: max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0),
    "leaky_relu": (lambda x: x if x > 0 else 0.01 * x, lambda x: 1.0 if x > 0 else 0.01),
    "elu": (lambda x: x if x > 0 else math.expm1(x), lambda x: 1.0 if x > 0 else math.exp(x)),
    "selu": (lambda x: LAMBDA * (x if x > 0 else ALPHA * math.expm1(x)),
             lambda x: LAMBDA * (1.0 if x > 0 else ALPHA * math.exp(x))),
    "gelu": (lambda x: x * _cdf(x), lambda x: _cdf(x) + x * _pdf(x)),
    "silu": (lambda x: x * _sig(x), lambda x: _sig(x) + x * _sig(x) * _sig(-x)),
    "softplus": (lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))), _sig),
}
BIAS_VARIANCES = (0.0, 0.05, 0.1, 0.5)


def _expect(g, q):
    """E[g(sqrt(q) z)], z ~ N(0, 1), by scipy quad on [-12, 12] cut at 0 and x = +-1, +-4.

    Relative accuracy 1e-12 on each piece, absolute 1e-15 of the whole (a first coarse pass gives
    its size): a piece where g is ~0 cannot reach a relative tolerance (quad warns of roundoff)."""
    s = math.sqrt(q)
    cuts = sorted({-12.0, 0.0, 12.0, *(x / s for x in (-4, -1, 1, 4) if abs(x / s) < 12)})

    def total(epsabs, epsrel):
        return sum(integrate.quad(lambda z: g(s * z) * _pdf(z), a, b, epsabs=epsabs, epsrel=epsrel,
                                  limit=200)[0] for a, b in zip(cuts[:-1], cuts[1:], strict=False))

    with warnings.catch_warnings():  # the coarse pass only sizes the integral
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        size = abs(total(0.0, 1e-6))
    return total(1e-15 * size, 1e-12)


class Reference:
    def __init__(self, name, sb):
        self.phi, self.dphi = PHI[name]
        self.sb = sb

    def m2(self, q):
        return self.phi(0.0) ** 2 if q == 0 else _expect(lambda x: self.phi(x) ** 2, q)

    def d2(self, q):
        if q == 0:  # the limit q -> 0+: the mean of the one-sided values at the kink
            return (self.dphi(-1e-300) ** 2 + self.dphi(1e-300) ** 2) / 2
        return _expect(lambda x: self.dphi(x) ** 2, q)

    def q_star(self, sw, q0=1.0):
        def gap(q):
            return sw * self.m2(q) + self.sb - q

        g0 = gap(q0)
        if abs(g0) <= 1e-13 * q0:
            return q0
        if g0 > 0:
            lo, hi = q0, 2 * q0
            while gap(hi) > 0:
                lo, hi = hi, 2 * hi
                if hi > Q_BIG:
                    return math.inf
        else:
            lo, hi = q0 / 2, q0
            while gap(lo) < 0:
                lo, hi = lo / 2, lo
                if lo < Q_ZERO:
                    return 0.0
        return optimize.brentq(gap, lo, hi, xtol=1e-300, rtol=1e-15)

    def chi1(self, sw):
        qs = self.q_star(sw)
        if math.isinf(qs):  # the limit q -> inf: the mean of phi'^2 at -inf and +inf
            return sw * (self.dphi(-1e6) ** 2 + self.dphi(1e6) ** 2) / 2, qs
        return sw * self.d2(qs), qs


CASES = [(name, sb) for name in PHI for sb in BIAS_VARIANCES]


@pytest.mark.slow
@pytest.mark.parametrize("name, sb", CASES)
def test_critical_point_has_chi1_one_at_its_own_q_star_or_there_is_none(name, sb):
    ref = Reference(name, sb)
    try:
        sw = theory.critical(name, sb)
    except theory.NoEdgeOfChaos as err:
        # The reference's sign change of chi_1 - 1 over sigma_w^2 must be a jump, not a crossing.
        def h(s):
            return ref.chi1(s)[0] - 1

        grid = [0.1 * 2**k for k in range(13)]  # 0.1 .. 410
        values = [h(s) for s in grid]
        assert values[0] < 0, f"{name}: the reference finds chi_1 >= 1 at sigma_w^2 = 0.1"
        k = next(i for i, v in enumerate(values) if v > 0)
        s = optimize.brentq(h, grid[k - 1], grid[k], xtol=1e-14, rtol=1e-13)
        below, above = h(s * (1 - 1e-7)), h(s * (1 + 1e-7))
        jump = max(abs(below), abs(above)) > 1e-3
        # ReLU-like: chi_1 reaches 1 only as q* diverges (finite but huge just below, inf above).
        diverging = math.isinf(ref.q_star(s * (1 + 1e-7))) and ref.q_star(s * (1 - 1e-7)) > 1e4 * max(sb, 1.0)
        assert jump or diverging, (
            f"{name} at sigma_b^2 = {sb}: theory says no edge of chaos ({err}), but the reference's chi_1 "
            f"crosses 1 continuously at sigma_w^2 = {s} (chi_1 - 1 = {below:.3g}, {above:.3g})")
        return
    chi, qs = ref.chi1(sw)
    assert math.isfinite(qs), f"{name} at sigma_b^2 = {sb}: critical sigma_w^2 = {sw} has q* = inf by the reference"
    assert chi == pytest.approx(1.0, abs=1e-8), f"{name} at sigma_b^2 = {sb}: sigma_w^2 = {sw}, q* = {qs}"
    # The library's own numbers at its critical point agree with the reference and with each other.
    assert theory.chi1(name, sw, sb) == pytest.approx(1.0, abs=theory.CRITICAL_TOL)
    assert theory.phase(name, sw, sb) == "critical"
    got_q = theory.q_star(name, sw, sb)
    if qs == 0.0:  # the degenerate points: q* is exactly 0, chi_1 = 1, xi_c infinite
        assert got_q == 0.0
        assert theory.depth_scales(name, sw, sb)[1] == math.inf
    else:
        assert got_q == pytest.approx(qs, rel=1e-6)


# Which (activation, sigma_b^2) have an edge of chaos: what the test above checks, pinned so that a
# change of the table's shape (an edge appearing or vanishing) is seen in review.
EXPECTED_NONE = {("relu", sb) for sb in BIAS_VARIANCES[1:]} | {("leaky_relu", sb) for sb in BIAS_VARIANCES[1:]} | {
    ("softplus", sb) for sb in BIAS_VARIANCES} | {("gelu", 0.0), ("gelu", 0.05), ("gelu", 0.1)} | {
    ("silu", sb) for sb in BIAS_VARIANCES}


@pytest.mark.parametrize("name, sb", CASES)
def test_which_points_have_an_edge_of_chaos(name, sb):
    if (name, sb) in EXPECTED_NONE:
        with pytest.raises(theory.NoEdgeOfChaos, match=rf"activation '{name}' on the edge of chaos"):
            theory.critical(name, sb)
        with pytest.raises(theory.NoEdgeOfChaos):
            theory.critical_init(name, sb)
    else:
        sw = theory.critical(name, sb)
        assert abs(theory.chi1(name, sw, sb) - 1) <= theory.CRITICAL_TOL


@pytest.mark.parametrize("name, sw, q_star, chi1, phase", [
    ("elu", 1.0, 0.0, 1.0, "critical"),  # issue 11: was "ordered" with q* = 7e-12
    ("selu", 2 / (LAMBDA**2 * (1 + ALPHA**2)), 0.0, 1.0, "critical"),
    ("erf", math.pi / 4, 0.0, 1.0, "critical"),  # was q* = 5.6e-17
    ("tanh", 1.0, 0.0, 1.0, "critical"),
    ("tanh", 0.5, 0.0, 0.5, "ordered"),
    ("elu", 0.8, 0.0, 0.8, "ordered"),
    ("gelu", 1.0, 0.0, 0.25, "ordered"),  # gelu'(0) = 1/2
    ("gelu", 4.0, math.inf, 2.0, "chaotic"),  # q = 0 is fixed but unstable: from q0 = 1, q* = inf
    ("silu", 4.0, math.inf, 2.0, "chaotic"),
])
def test_degenerate_points_q_star_zero(name, sw, q_star, chi1, phase):
    assert theory.q_star(name, sw, 0.0) == q_star
    # At q* = inf, chi_1 is its limit taken at q = Q_INF = 1e12: error O(Q_INF^-1/2), here 3e-7.
    assert theory.chi1(name, sw, 0.0) == pytest.approx(chi1, rel=1e-12 if q_star < math.inf else 1e-6)
    assert theory.phase(name, sw, 0.0) == phase
    if phase == "critical":
        assert theory.critical(name, 0.0) == pytest.approx(sw, rel=1e-13)
        assert theory.depth_scales(name, sw, 0.0) == (math.inf, math.inf)
        assert theory.c_star(name, sw, 0.0) == 1.0


def test_elu_length_map_is_accurate_at_small_q():
    """The closed form lost ~1e-16/q relative to cancellation (7e-6 at q = 1e-11): against scipy."""
    ref = Reference("elu", 0.0)
    for q in (1e-11, 1e-6, 1e-3, 0.04, 0.06, 1.0):
        assert theory.q_map("elu", 1.0, 0.0, q) == pytest.approx(ref.m2(q), rel=1e-11)


def test_the_error_says_why():
    with pytest.raises(theory.NoEdgeOfChaos, match=r"'gelu'.*bias_variance=0.1: chi_1 = 1 at the fixed point "
                       r"q = 1.63\d* of sigma_w\^2 = 2.0766\d*, but from q0 = 1 the length map reaches q\* = "
                       r"0.4228\d* there, where chi_1 = 0.8192"):
        theory.critical("gelu", 0.1)
    with pytest.raises(theory.NoEdgeOfChaos, match=r"'softplus'.*chi_1 < 1 at every fixed point .*q\* diverges "
                       r"before chi_1 reaches 1"):
        theory.critical("softplus", 0.0)
    with pytest.raises(theory.NoEdgeOfChaos, match=r"'relu'.*positively homogeneous.*\(sigma_w\^2, sigma_b\^2\) = "
                       r"\(2, 0\)"):
        theory.critical("relu", 0.1)
    assert issubclass(theory.NoEdgeOfChaos, ValueError)


@pytest.mark.parametrize("argv", [["gelu", "--bias-variance", "0.5"], ["elu"], ["selu"], ["tanh", "--bias-variance", "0.05"],
                                  ["sigmoid", "--bias-variance", "0.1"]])
def test_cli_prints_a_critical_point_that_is_critical(capsys, argv):
    from jaxinit import cli

    assert cli.main(["theory", *argv]) == 0
    out = capsys.readouterr().out
    assert "chi_1 = 1  " in out and "phase: critical" in out and "xi_c = inf" in out


def test_cli_says_when_there_is_no_edge_of_chaos(capsys):
    from jaxinit import cli

    assert cli.main(["theory", "gelu", "--bias-variance", "0.1"]) == 1  # was "2.07668" then "phase: ordered"
    out = capsys.readouterr().out
    assert "critical sigma_w^2 (chi_1 = 1, edge of chaos): none: no weight_variance puts activation 'gelu'" in out
    assert "phase:" not in out
    assert cli.main(["theory", "relu", "--bias-variance", "0.1", "--weight-variance", "1.5"]) == 0
    out = capsys.readouterr().out
    assert "none: " in out and "q* = 0.4  c* = 1  chi_1 = 0.75" in out and "phase: ordered" in out
