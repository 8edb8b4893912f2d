"""The verdicts printed after a sweep."""

from jaxinit.report import STABLE_FACTOR, Verdict


def verdict(q_ratio, grad_ratio=1.0, overflow=-1, n=0, depth=50):
    rate = q_ratio ** (1 / (depth - 1)) if q_ratio > 0 else float("nan")
    return Verdict("p", "init", "-", q_ratio, rate, grad_ratio, overflow, n).verdict


def test_forward_verdicts_follow_the_whole_depth_factor():
    assert verdict(1.0) == "stable"
    assert verdict(STABLE_FACTOR * 0.99) == "stable"
    assert verdict(0.5**49).startswith("vanishing (x0.5/layer)")
    assert verdict(2.0**49).startswith("exploding (x2/layer)")
    assert verdict(0.0) == "vanishing (to zero)"


def test_gradients_and_overflow_are_reported():
    assert verdict(1.0, grad_ratio=11.1) == "stable; gradients grow toward the input (x11.1)"
    assert verdict(1.0, grad_ratio=0.1) == "stable; gradients shrink toward the input (x0.1)"
    assert verdict(1.0, grad_ratio=float("nan")) == "stable"
    assert verdict(1e30, overflow=7, n=3) == "overflow at layer 8"  # index 7 is layer l = 8, as in the figures


def test_underflow_is_named_with_its_layer_and_seed_count():
    v = Verdict("p", "normal(0.01)", "-", 0.0, float("nan"), float("nan"), -1, 0, underflow_layer=19, n_underflow=30,
                n_seeds=32)
    assert v.verdict == "vanishing (q underflows at layer 20, 30/32 seeds)"
    # Overflow wins: after it, nothing is measured.
    v = Verdict("p", "x", "-", float("nan"), float("nan"), 1.0, 4, 2, underflow_layer=9, n_underflow=1, n_seeds=2)
    assert v.verdict == "overflow at layer 5"


def test_run_table_prints_a_dash_for_a_ratio_it_did_not_measure():
    from jaxinit.report import _num

    assert _num(float("nan")) == "-" and _num(float("inf")) == "inf" and _num(0.5) == "0.5"
