"""The training engine (jaxinit.lab.engine.train): learning, symmetry, invariance, schedules,
clipping, divergence, targets and bad input (issue 13)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxinit.lab import data
from jaxinit.lab.engine import train as T

from helpers import Z

SGD = {"name": "sgd", "momentum": 0.9}


# ---------------------------------------------------------------------------------------------
# Digits: He ReLU learns; zeros and constant keep their units identical
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return data.digits()


@pytest.fixture(scope="module")
def digits_run(digits):
    plan = T.TrainPlan(2, 32, digits.in_dim, digits.out_dim,
                       ("he_normal", "zeros", {"name": "constant", "value": 0.05}), activation="relu",
                       optimizer=SGD, learning_rate=0.05, steps=200, batch=32, eval_every=50,
                       target_accuracy=0.5, target_loss=1e-6)
    return plan, T.train_members(plan, digits, base_seed=0, seed_ids=[0, 1])


def test_he_relu_learns_digits_far_above_chance(digits, digits_run):
    from sklearn.linear_model import LogisticRegression

    plan, out = digits_run
    loss, acc = out["train_loss"][0, 0], out["final_test_accuracy"][0, 0]  # he_normal, (seed, step)
    assert (loss[:, -1] < 0.25 * loss[:, 0]).all(), loss
    # Chance: the most frequent test class; "far above" it: Z binomial standard errors, and at least
    # 90% of what a linear classifier (logistic regression) reaches on the same split.
    chance = np.bincount(digits.y_test).max() / digits.n_test
    bar = chance + Z * math.sqrt(chance * (1 - chance) / digits.n_test)
    linear = LogisticRegression(max_iter=2000).fit(digits.x_train, digits.y_train).score(digits.x_test, digits.y_test)
    assert (acc > max(bar, 0.9 * linear)).all(), (acc, bar, linear)
    assert not out["diverged"].any()
    assert out["train_loss"].shape == (3, 1, 2, len(T.eval_steps(plan)))
    assert out["grad_w_norm"].shape == (3, 1, 2, 5, plan.depth + 1)
    assert out["dead_fraction"].shape == (3, 1, 2, 5, plan.depth)


def test_symmetric_inits_keep_one_distinct_unit_per_layer(digits_run):
    plan, out = digits_run
    distinct = out["distinct_units"]  # (init, grid, seed, layer)
    assert (distinct[0] > 1).all() and (distinct[0] == plan.width).all(), distinct[0]
    assert (distinct[1:] == 1).all(), distinct[1:]
    # The constant net did train (its loss fell) while its units stayed identical: a hidden-to-hidden
    # kernel's entries all stay equal (std 0) only if no unit of either layer ever broke away.
    loss = out["train_loss"][2, 0]
    assert (loss[:, -1] < loss[:, 0] - 0.1).all(), loss
    assert (out["weight_std"][2, 0, :, -1, 0] > 0).all()  # the input layer's rows (features) differ
    np.testing.assert_array_equal(out["weight_std"][2, 0, :, :, 1:plan.depth], 0.0)


def test_targets_first_evaluated_step_or_nan(digits_run):
    plan, out = digits_run
    steps = T.eval_steps(plan)
    assert np.isnan(out["steps_to_loss"]).all()  # 1e-6 cross-entropy is never reached: NaN, not 0 or the last step
    acc = out["test_accuracy"]
    for idx in np.ndindex(acc.shape[:3]):
        hit = np.flatnonzero(acc[idx] >= 0.5)
        expected = steps[hit[0]] if hit.size else np.nan
        np.testing.assert_equal(out["steps_to_accuracy"][idx], expected)
    assert (out["steps_to_accuracy"][0] > 0).all()  # He reaches 50% after some training
    assert np.isnan(out["steps_to_accuracy"][1]).all()  # zeros never does


# ---------------------------------------------------------------------------------------------
# Invariance: chunks, devices, a member alone
# ---------------------------------------------------------------------------------------------
TEACHER = dict(n=256, in_dim=8, task="classification", n_classes=3, seed=1)


def _small_plan(inits=("he_normal", "glorot_normal")):
    return T.TrainPlan(2, 16, 8, 3, inits, optimizer={"name": "adam"}, learning_rate=0.01, steps=30, batch=16,
                       eval_every=10)


@pytest.fixture(scope="module")
def small_data():
    return data.teacher(**TEACHER)


@pytest.fixture(scope="module")
def one_chunk(small_data):
    return T.train_members(_small_plan(), small_data, base_seed=3, seed_ids=[0, 1, 2, 3], block=2, chunk=4,
                           devices=1)


def test_chunking_leaves_members_bitwise_unchanged(small_data, one_chunk):
    two_chunks = T.train_members(_small_plan(), small_data, base_seed=3, seed_ids=[0, 1, 2, 3], block=2, chunk=2,
                                 devices=1)
    assert sorted(two_chunks) == sorted(one_chunk)
    for name in one_chunk:
        np.testing.assert_array_equal(two_chunks[name], one_chunk[name], err_msg=name)


def test_member_alone_equals_member_in_ensemble(small_data, one_chunk):
    # He-normal seed 2 trained alone (one initializer, one seed, vmap block 1) against the same
    # member inside the 2-initializer x 4-seed ensemble (block 2). Bitwise equality is not promised:
    # XLA may round a batched matmul differently from a single one; measured on this CPU it is
    # within float32 rounding (assert_allclose rtol 1e-5 after 30 Adam steps).
    alone = T.train_members(_small_plan(("he_normal",)), small_data, base_seed=3, seed_ids=[2], devices=1)
    for name, value in alone.items():
        np.testing.assert_allclose(value[0, 0, 0], one_chunk[name][0, 0, 2], rtol=1e-5, atol=1e-7, err_msg=name)
    np.testing.assert_array_equal(alone["distinct_units"][0, 0, 0], one_chunk["distinct_units"][0, 0, 2])


def test_members_one_at_a_time_match_members_vmapped(small_data, one_chunk):
    # group=1 trains each member alone (lax.map, no vmap); the default here vmaps all 4 of a block.
    # XLA may round a batched matmul differently from a single one (1-2 ulp measured), so the
    # records agree to float32 rounding and the distinct-unit counts exactly.
    alone = T.train_members(_small_plan(), small_data, base_seed=3, seed_ids=[0, 1, 2, 3], block=2, chunk=4,
                            devices=1, group=1)
    for name, value in alone.items():
        np.testing.assert_allclose(value, one_chunk[name], rtol=1e-5, atol=1e-7, err_msg=name)
    np.testing.assert_array_equal(alone["distinct_units"], one_chunk["distinct_units"])


def test_orders_drawn_in_the_training_program_are_the_same_rows(small_data, one_chunk, monkeypatch):
    # Past ORDERS_IN_INIT_BYTES a block's minibatch orders are drawn inside the training program
    # instead of the init program: the same permutations, so the same records, bit for bit.
    from jaxinit.lab.engine.train import program

    monkeypatch.setattr(program, "ORDERS_IN_INIT_BYTES", 0)
    late = T.train_members(_small_plan(), small_data, base_seed=3, seed_ids=[0, 1, 2, 3], block=2, chunk=4,
                           devices=1)
    for name in one_chunk:
        np.testing.assert_array_equal(late[name], one_chunk[name], err_msg=name)


def test_member_bytes_counts_every_parameter():
    import jax

    from jaxinit import nets

    plan = T.TrainPlan(3, 24, 5, 4, ("he_normal",), dtype="bfloat16")
    params = nets.init(jax.random.key(0), 5, 24, 3, 4, plan.initializers[0], plan.bias_init, "bfloat16")
    n_params = sum(a.size for a in jax.tree.leaves(params))
    assert T.member_bytes(plan) == 3 * n_params * 2  # parameters, gradients, one optimizer slot; 2-byte entries


def test_cpu_groups_fit_the_members_training_state_in_a_cores_cache():
    cap = T.CPU_GROUP_BYTES
    # block 4 x 4 members = 16 per call; the largest divisor of 16 whose state fits.
    assert T.layout(16, members=4, member_bytes=0).group == 16
    assert T.layout(16, members=4, member_bytes=cap // 8).group == 8
    assert T.layout(16, members=4, member_bytes=cap // 8 + 1).group == 4
    assert T.layout(16, members=4, member_bytes=cap + 1).group == 1
    # 9 members of one seed (block 1): divisors 1, 3, 9.
    assert T.layout(1, members=9, member_bytes=cap // 5).group == 3
    assert T.layout(8, block=2, members=3, group=2).group == 2


@pytest.mark.parametrize("group", [0, 3, 5])
def test_group_must_divide_a_blocks_members(group):
    with pytest.raises(ValueError, match=rf"group.*got group={group}" if group else "group must be >= 1"):
        T.layout(8, block=2, members=2, group=group)


# ---------------------------------------------------------------------------------------------
# Schedules and clipping
# ---------------------------------------------------------------------------------------------
def _triangular(t, base, top, step_size):
    cycle = math.floor(1 + t / (2 * step_size))
    x = abs(t / step_size - 2 * cycle + 1)
    return base + (top - base) * max(0.0, 1 - x)


def test_cyclical_schedule_matches_the_triangular_formula():
    f = T.make_schedule({"name": "cyclical", "base": 0.001, "max": 0.1, "step_size": 7})
    for t in (0, 1, 3, 7, 8, 13, 14, 15, 21, 30, 100, 1001):
        # float32 arithmetic: a few ulps of the largest value, 0.1.
        np.testing.assert_allclose(float(f(t)), _triangular(t, 0.001, 0.1, 7), rtol=0, atol=4 * 2**-24 * 0.1,
                                   err_msg=f"t={t}")


def test_training_applies_the_cyclical_rate_to_clipped_gradients(small_data):
    # Plain SGD: update = lr(t) * clip(g), so update_norm = lr(t) * min(grad_norm, c) <= lr(t) * c.
    clip = 0.05
    plan = T.TrainPlan(2, 16, 8, 3, ("he_normal",), optimizer="sgd", steps=12, batch=16, eval_every=1,
                       learning_rate={"name": "cyclical", "base": 0.5, "max": 2.0, "step_size": 3},
                       clip_global_norm=clip)
    out = T.train_members(plan, small_data, seed_ids=[0], devices=1)
    g, u = out["grad_norm"][0, 0, 0], out["update_norm"][0, 0, 0]
    lr = np.asarray([_triangular(max(k - 1, 0), 0.5, 2.0, 3) for k in range(len(g))])  # eval k: step k - 1
    assert (g > clip).all(), g  # clipping was active at every step
    np.testing.assert_allclose(u, lr * np.minimum(g, clip), rtol=1e-5)
    assert (u <= lr * clip * (1 + 1e-6)).all()


# ---------------------------------------------------------------------------------------------
# Grid: learning rate per member, divergence, weight and bias variance
# ---------------------------------------------------------------------------------------------
def test_diverging_member_is_recorded_while_the_others_finish(small_data):
    plan = T.TrainPlan(2, 64, 8, 3, ("he_normal",), optimizer="sgd", learning_rate=0.05, steps=20, batch=16,
                       eval_every=5)
    grid = [{}, {"learning_rate": 1e30}, {"weight_variance": 4.0, "bias_variance": 0.25}]
    out = T.train_members(plan, small_data, seed_ids=[0], grid=grid, devices=1)
    assert out["diverged"][0, :, 0].tolist() == [False, True, False]
    loss = out["train_loss"][0, :, 0]
    assert np.isfinite(loss[[0, 2]]).all() and loss[0, -1] < loss[0, 0]
    assert np.isfinite(loss[1, 0]) and np.isnan(loss[1, 1:]).all()  # evaluated before, NaN after
    assert np.isnan(out["final_test_loss"][0, 1, 0]) and np.isfinite(out["final_test_loss"][0, [0, 2], 0]).all()
    # sigma_w^2 = fan_in * E[W^2] = 4 at grid point 2: the kernels' std at step 0 is sqrt(4 / fan_in)
    # within Z standard errors of a sample std (relative se 1 / sqrt(2 n) for n Gaussian entries).
    std0 = out["weight_std"][0, 2, 0, 0]
    for layer, (fan_in, fan_out) in enumerate([(8, 64), (64, 64), (64, 3)]):
        np.testing.assert_allclose(std0[layer], math.sqrt(4.0 / fan_in), rtol=Z / math.sqrt(2 * fan_in * fan_out))
    # Grid point 0 is He's own variance 2 / fan_in.
    np.testing.assert_allclose(out["weight_std"][0, 0, 0, 0, 1], math.sqrt(2 / 64), rtol=Z / math.sqrt(2 * 64 * 64))


def test_grid_learning_rate_is_each_members_own():
    # SGD without momentum or clipping: update_norm / grad_norm is the member's learning rate.
    d = data.teacher(**TEACHER)
    plan = T.TrainPlan(1, 8, 8, 3, ("he_normal",), optimizer="sgd", learning_rate=0.1, steps=2, batch=16,
                       eval_every=1)
    out = T.train_members(plan, d, seed_ids=[0], grid=[{}, {"learning_rate": 0.003}], devices=1)
    ratio = out["update_norm"][0, :, 0] / out["grad_norm"][0, :, 0]
    np.testing.assert_allclose(ratio, [[0.1] * 3, [0.003] * 3], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Bad input: one clear line each
# ---------------------------------------------------------------------------------------------
def _plan(**kw):
    args = dict(depth=1, width=4, in_dim=8, out_dim=3, initializers=("he_normal",))
    return T.TrainPlan(**{**args, **kw})


def test_batch_larger_than_the_training_set(small_data):
    with pytest.raises(ValueError, match=r"^batch must be <= the training set's 192 examples .*got batch=500"):
        T.train_members(_plan(batch=500), small_data)


@pytest.mark.parametrize("steps", [0, -3])
def test_zero_or_negative_steps(steps):
    with pytest.raises(ValueError, match=rf"^steps must be >= 1; got {steps}"):
        _plan(steps=steps)


def test_unknown_optimizer_names_the_closest_optax_name():
    with pytest.raises(ValueError, match=r"^optimizer must be an optax optimizer .*got 'adamm'\. Did you mean 'adam'\?$"):
        _plan(optimizer={"name": "adamm"})


def test_optimizer_arguments_optax_does_not_take():
    with pytest.raises(ValueError, match=r"^optimizer 'sgd' does not take \['beta'\]; optax.sgd takes \[.*'momentum'"):
        _plan(optimizer={"name": "sgd", "beta": 0.9})
    with pytest.raises(ValueError, match=r"optimizer 'adam' does not take \['learning_rate'\]"):
        _plan(optimizer={"name": "adam", "learning_rate": 0.1})


def test_unknown_schedule_and_its_arguments():
    with pytest.raises(ValueError, match=r"^learning_rate schedule must be one of .*got 'cosine_decay'\. Did you mean 'cosine_decay_schedule'\?$"):
        _plan(learning_rate={"name": "cosine_decay", "init_value": 0.1, "decay_steps": 10})
    with pytest.raises(ValueError, match=r"^learning_rate schedule 'cyclical' does not take \['top'\]"):
        _plan(learning_rate={"name": "cyclical", "base": 0.1, "top": 1.0, "step_size": 5})
    plan = _plan(learning_rate={"name": "cosine_decay_schedule", "init_value": 0.1, "decay_steps": 10})
    with pytest.raises(ValueError, match=r"grid learning_rate replaces a number; .*schedule 'cosine_decay_schedule'"):
        T.grid_arrays(plan, [{"learning_rate": 0.1}])


def test_bad_grid_and_plan_values():
    with pytest.raises(ValueError, match=r"grid point 0 sets \['learning_rat'\]; .*Did you mean 'learning_rate'\?"):
        T.grid_arrays(_plan(), [{"learning_rat": 0.1}])
    with pytest.raises(ValueError, match=r"^loss must be one of \['mse', 'xent'\]; got 'hinge'"):
        _plan(loss="hinge")
    with pytest.raises(ValueError, match=r"loss='xent' needs task='classification'"):
        _plan(task="regression")
    with pytest.raises(ValueError, match=r"^clip_global_norm must be > 0; got -1.0"):
        _plan(clip_global_norm=-1.0)


def test_plan_is_hashable_and_normalized():
    a = _plan(optimizer={"name": "sgd", "momentum": 0.9}, learning_rate={"name": "cyclical", "base": 0.1,
                                                                           "max": 1.0, "step_size": 5})
    b = _plan(optimizer="sgd", optimizer_kwargs={"momentum": 0.9},
              learning_rate=T.Schedule("cyclical", (("base", 0.1), ("max", 1.0), ("step_size", 5))))
    assert a == b and hash(a) == hash(b)
    assert a.optimizer == "sgd" and a.optimizer_kwargs == (("momentum", 0.9),)
