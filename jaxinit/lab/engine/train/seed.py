"""Traced code: one seed's members' parameters, a block's members trained group by group, and one
member's training scan and evaluations (the package docstring has the keys, the masking of
non-finite steps and what is recorded)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxinit import nets
from jaxinit._prng import fold_in
from jaxinit.initializers import normal
from jaxinit.lab.engine.train.plan import (
    DATA_BRANCH,
    DEAD_THRESHOLD,
    DISTINCT_RTOL,
    Schedule,
    TrainPlan,
    _set_learning_rate,
    _wide,
    make_optimizer,
    make_schedule,
)
from jaxinit.lsuv import LSUV


# ---------------------------------------------------------------------------------------------
# Parameters of a seed's members; a block's members trained group by group; one member's training
# ---------------------------------------------------------------------------------------------
def _member_params(plan: TrainPlan, key: jax.Array, wv: jax.Array, bv: jax.Array,
                   x_fit: jax.Array | None = None) -> dict[str, Any]:
    """Parameters of every member of one seed, stacked (n_init * n_grid, ...), initializer-major.

    An LSUV entry draws with its base, takes the grid's rescale as the base would, then each of its
    members is fitted on ``x_fit`` (:meth:`jaxinit.lsuv.LSUV.apply` under ``vmap``: each member
    iterates on its own)."""
    dtype, wide = np.dtype(plan.dtype), _wide(plan)
    n_grid = wv.shape[0]
    noise = normal(1.0)
    bias_noise = {
        "input": noise(nets.layer_keys(key, 0)[1], (plan.width,), wide),
        "hidden": jax.vmap(lambda i: noise(nets.layer_keys(key, i)[1], (plan.width,), wide))(
            jnp.arange(1, plan.depth, dtype=jnp.int32)) if plan.depth > 1 else jnp.zeros((0, plan.width), wide),
        "readout": noise(nets.layer_keys(key, plan.depth)[1], (plan.out_dim,), wide),
    }
    layer_of = {"input": 0, "hidden": min(1, plan.depth), "readout": plan.depth}
    per_init = []
    for i, init in enumerate(plan.drawn):
        p = nets.init(key, plan.in_dim, plan.width, plan.depth, plan.out_dim, init, plan.bias_init, dtype)
        out = {}
        for part, layer in layer_of.items():
            fan_in = plan.layer_shape(layer)[0]
            m2 = float(plan.second_moment(layer)[i])
            keep = jnp.isnan(wv) | (m2 == 0.0)
            f = jnp.where(keep, 1.0, jnp.sqrt(jnp.nan_to_num(wv) / (fan_in * (m2 or 1.0)))).astype(wide)
            kernel, bias = p[part]["kernel"], p[part]["bias"]
            f = f.reshape((n_grid,) + (1,) * kernel.ndim)
            k = (kernel[None].astype(wide) * f).astype(dtype)  # exact (f = 1) where the grid sets nothing
            bstd = jnp.sqrt(jnp.nan_to_num(bv)).astype(wide).reshape((n_grid,) + (1,) * bias.ndim)
            b = jnp.where(jnp.isnan(bv).reshape(bstd.shape), bias[None].astype(wide), bstd * bias_noise[part][None])
            out[part] = {"kernel": k, "bias": b.astype(dtype)}
        spec = plan.initializers[i]
        if isinstance(spec, LSUV):
            out = jax.vmap(lambda q, spec=spec: spec.apply(q, x_fit, plan.activation))(out)
        per_init.append(out)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *per_init)  # (n_init, n_grid, ...)
    return jax.tree.map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), stacked)


# Up to this many hidden layers the scan over them is unrolled: a step then runs no inner loops
# (10% less CPU per member-step at T1, depth 3); deeper nets keep the loop, compile time flat in depth.
UNROLL_HIDDEN = 8


def _unroll(plan: TrainPlan) -> bool | int:
    return True if plan.depth - 1 <= UNROLL_HIDDEN else 1


def _forward(plan: TrainPlan, params: dict[str, Any], x: jax.Array, dead: bool = False):
    """Logits (and, with ``dead``, each hidden layer's dead-unit fraction on ``x``)."""
    phi = plan.activation

    def layer(x, p):
        h = jnp.matmul(x, p["kernel"]) + p["bias"]
        out = phi(h)
        if not dead:
            return out, None
        slope = jax.jvp(phi, (h,), (jnp.ones_like(h),))[1]
        frac = jnp.mean(jnp.all(jnp.abs(slope.astype(_wide(plan))) < DEAD_THRESHOLD, axis=0).astype(_wide(plan)))
        return out, frac

    x, d0 = layer(x, params["input"])
    x, dh = jax.lax.scan(layer, x, params["hidden"], unroll=_unroll(plan))
    logits = jnp.matmul(x, params["readout"]["kernel"]) + params["readout"]["bias"]
    if not dead:
        return logits
    return logits, jnp.concatenate([d0[None], dh])


def _loss(plan: TrainPlan, logits: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy over the batch (``xent``), or the mean squared error over every
    output (``mse``; one-hot targets for class labels)."""
    logits = logits.astype(_wide(plan))
    if plan.loss == "xent":
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    target = jax.nn.one_hot(y, plan.out_dim, dtype=logits.dtype) if plan.task == "classification" else y
    return jnp.mean(jnp.square(logits - target.astype(logits.dtype)))


def _accuracy(plan: TrainPlan, logits: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(_wide(plan)))


def _layer_norms(plan: TrainPlan, tree: dict[str, Any]) -> jax.Array:
    """Frobenius norm of each layer's kernel, layers 0 .. depth."""
    w = _wide(plan)

    def norm(a, axes):
        return jnp.sqrt(jnp.sum(jnp.square(a.astype(w)), axis=axes))

    return jnp.concatenate([norm(tree["input"]["kernel"], None)[None], norm(tree["hidden"]["kernel"], (1, 2)),
                            norm(tree["readout"]["kernel"], None)[None]])


def _weight_std(plan: TrainPlan, params: dict[str, Any]) -> jax.Array:
    w = _wide(plan)
    return jnp.concatenate([jnp.std(params["input"]["kernel"].astype(w))[None],
                            jnp.std(params["hidden"]["kernel"].astype(w), axis=(1, 2)),
                            jnp.std(params["readout"]["kernel"].astype(w))[None]])


def _distinct(plan: TrainPlan, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """How many units (columns of ``[kernel; bias]``) differ from every earlier unit."""
    u = jnp.concatenate([kernel, bias[None]], axis=0).T.astype(_wide(plan))  # (width, fan_in + 1)
    scale = jnp.max(jnp.abs(u), axis=1)
    diff = jax.lax.map(lambda ui: jnp.max(jnp.abs(u - ui), axis=1), u)  # (width, width), one row at a time
    same = diff <= DISTINCT_RTOL * jnp.maximum(scale[:, None], scale[None, :])
    earlier = jnp.tril(same, k=-1)  # same[j, i] for i < j
    return jnp.sum(~jnp.any(earlier, axis=1)).astype(jnp.int32)


def _distinct_units(plan: TrainPlan, params: dict[str, Any]) -> jax.Array:
    first = _distinct(plan, params["input"]["kernel"], params["input"]["bias"])
    rest = jax.vmap(lambda k, b: _distinct(plan, k, b))(params["hidden"]["kernel"], params["hidden"]["bias"])
    return jnp.concatenate([first[None], rest])


def _minibatch_index(plan: TrainPlan, dkey: jax.Array, t, n_train: int) -> jax.Array:
    """The training-set rows of step ``t``'s minibatch (``plan.batch > 0``): epoch ``t // per_epoch``
    is the permutation ``permutation(fold_in(dkey, epoch), n_train)``, cut into ``per_epoch``
    minibatches of ``batch`` rows."""
    per_epoch = n_train // plan.batch
    perm = jax.random.permutation(fold_in(dkey, t // per_epoch), n_train)
    return jax.lax.dynamic_slice(perm, ((t % per_epoch) * plan.batch,), (plan.batch,))


def _minibatch_order(plan: TrainPlan, dkey: jax.Array, n_train: int) -> jax.Array:
    """Every minibatch of the run at once, ``(plan.n_chunks * plan.chunk_steps, batch)`` rows
    (``plan.batch > 0``): row ``t`` is :func:`_minibatch_index` of step ``t``, each epoch's
    permutation drawn once instead of at every step of the epoch (the same rows, bit for bit;
    steps past ``plan.steps`` are padding, never applied)."""
    per_epoch = n_train // plan.batch
    total = plan.n_chunks * plan.chunk_steps
    epochs = -(-total // per_epoch)
    perms = jax.vmap(lambda e: jax.random.permutation(fold_in(dkey, e), n_train))(
        jnp.arange(epochs, dtype=jnp.int32))
    return perms[:, :per_epoch * plan.batch].reshape(epochs * per_epoch, plan.batch)[:total]


def _fit_batch(plan: TrainPlan, dkey: jax.Array, x_train: jax.Array) -> jax.Array:
    """LSUV's fit batch, in the network's dtype: the seed's first minibatch (the rows step 0
    trains on); with full-batch training, the first :meth:`TrainPlan.fit_rows` rows (at most
    ``LSUV_FULL_BATCH_ROWS``) of the training set."""
    x = x_train.astype(np.dtype(plan.dtype))
    n_train = x.shape[0]
    if plan.batch == 0:
        return x[:plan.fit_rows(n_train)]
    return x[_minibatch_index(plan, dkey, 0, n_train)]


def _data_key(base_seed, seed) -> jax.Array:
    return fold_in(fold_in(jax.random.key(base_seed), DATA_BRANCH), seed)


def _seed_init(plan: TrainPlan, base_seed, seed, wv, bv, x_train=None):
    """Initial parameters of every member of one seed (seed key ``fold_in(key(base_seed), seed)``);
    ``x_train``: the training features, read only by LSUV entries (:func:`_fit_batch`)."""
    x_fit = _fit_batch(plan, _data_key(base_seed, seed), x_train) if plan.lsuv else None
    return _member_params(plan, fold_in(jax.random.key(base_seed), seed), wv, bv, x_fit)


def _fit_variances(plan: TrainPlan, params: dict[str, Any], x: jax.Array) -> jax.Array:
    """Each layer's output variance on ``x`` (layers 0 .. depth, the readout last): what LSUV reached."""
    wide = _wide(plan)

    def layer(x, p):
        h = jnp.matmul(x, p["kernel"]) + p["bias"]
        return plan.activation(h), jnp.var(h.astype(wide))

    x, v0 = layer(x, params["input"])
    x, vh = jax.lax.scan(layer, x, params["hidden"])
    _, vr = layer(x, params["readout"])
    return jnp.concatenate([v0[None], vh, vr[None]])


def _member_lr(plan: TrainPlan, lr: jax.Array) -> jax.Array:
    """Each of a seed's members' learning rates, ``(n_init * n_grid,)``: the grid's, or the plan's
    number where the grid sets none (unused under a schedule)."""
    fixed = plan.learning_rate if not isinstance(plan.learning_rate, Schedule) else 0.0
    return jnp.tile(jnp.where(jnp.isnan(lr), jnp.asarray(fixed, lr.dtype), lr), plan.n_init)


def _block_orders(plan: TrainPlan, base_seed, seeds, n_train: int) -> jax.Array:
    """Each seed's minibatch order, ``(block, n_chunks * chunk_steps, batch)`` (:func:`_minibatch_order`)."""
    return jax.vmap(lambda s: _minibatch_order(plan, _data_key(base_seed, s), n_train))(seeds)


def _block_train(plan: TrainPlan, group: int, base_seed, seeds, params, orders, lr, x_train, y_train, x_test,
                 y_test):
    """Train every member of a block of seeds from ``params`` ``(block, n_init * n_grid, ...)``;
    arrays ``(block, n_init, n_grid, ...)``. ``orders``: the seeds' minibatch orders
    (:func:`_block_orders`), or ``None`` to draw them here.

    Each member runs its whole training on its own (:func:`_member_train`); ``lax.map`` runs them
    ``group`` at a time under ``vmap`` (1: one after another, no batching)."""
    block, n_combo = seeds.shape[0], params["input"]["kernel"].shape[1]
    n_grid = lr.shape[0]
    dtype = np.dtype(plan.dtype)
    x_train, x_test = x_train.astype(dtype), x_test.astype(dtype)
    n_train = x_train.shape[0]
    # One minibatch order per seed, shared by its members (common random numbers).
    if orders is None and plan.batch:
        orders = _block_orders(plan, base_seed, seeds, n_train)
    fits = jax.vmap(lambda s: _fit_batch(plan, _data_key(base_seed, s), x_train))(seeds) if plan.lsuv else None
    is_lsuv = jnp.repeat(jnp.asarray([i in dict(plan.lsuv) for i in range(plan.n_init)]), n_grid)
    members = {
        "params": jax.tree.map(lambda a: a.reshape((block * n_combo,) + a.shape[2:]), params),
        "lr": jnp.tile(_member_lr(plan, lr), block),
        "seed": jnp.repeat(jnp.arange(block, dtype=jnp.int32), n_combo),
        "lsuv": jnp.tile(is_lsuv, block),
    }

    def one(m):
        order = orders[m["seed"]] if orders is not None else None
        x_fit = fits[m["seed"]] if fits is not None else None
        return _member_train(plan, m["params"], m["lr"], order, x_fit, m["lsuv"], x_train, y_train, x_test, y_test)

    out = jax.lax.map(one, members, batch_size=group if group > 1 else None)
    return {k: v.reshape((block, plan.n_init, n_grid) + v.shape[1:]) for k, v in out.items()}


def _member_train(plan: TrainPlan, params, lr, order, x_fit, is_lsuv, x_train, y_train, x_test, y_test):
    """One member's whole training from ``params``: a ``lax.scan`` over evaluation chunks, each a
    ``lax.scan`` of ``plan.chunk_steps`` steps on the minibatches ``order`` (rows of ``x_train``;
    ``None``: full batch), then the evaluation. Returns the member's records (evaluations
    ``(n_eval, ...)``, ``diverged``, ``distinct_units``, and with LSUV entries ``lsuv_variance``)."""
    wide = _wide(plan)
    schedule = plan.learning_rate
    if isinstance(schedule, Schedule):
        schedule = make_schedule(schedule, check=False)
    tx = make_optimizer(plan, schedule)
    opt = tx.init(params)
    if not isinstance(plan.learning_rate, Schedule):
        opt = _set_learning_rate(plan, opt, lr)

    def step(carry, t):
        (p, s, alive), sums, count, firsts = carry
        if order is None:
            xb, yb = x_train, y_train
        else:
            idx = order[t]
            xb, yb = x_train[idx], y_train[idx]
        active = t < plan.steps
        loss, g = jax.value_and_grad(lambda q: _loss(plan, _forward(plan, q, xb), yb))(p)
        gnorm = optax.tree.norm(g).astype(wide)
        updates, s_new = tx.update(g, s, p)
        unorm = optax.tree.norm(updates).astype(wide)
        finite = jnp.isfinite(loss) & jnp.isfinite(gnorm) & jnp.isfinite(unorm)
        ok = alive & active & finite
        p_new = optax.apply_updates(p, updates)
        p = jax.tree.map(lambda a, b: jnp.where(ok, a, b), p_new, p)
        s = jax.tree.map(lambda a, b: jnp.where(ok, a, b), s_new, s)
        alive = alive & ~(active & ~finite)
        stats = (gnorm, unorm, _layer_norms(plan, g))
        # Sums carried step by step (not a reduction over the stacked steps, whose order XLA may
        # choose differently in another program): the chunk means are bitwise the same everywhere.
        sums = tuple(acc + jnp.where(ok, a, 0.0) for acc, a in zip(sums, stats, strict=True))
        # The first step of each chunk is kept as well (chunk 0's is the step-0 record).
        firsts = tuple(jnp.where(t % plan.chunk_steps == 0, jnp.where(ok, a, jnp.nan), f)
                       for f, a in zip(firsts, stats, strict=True))
        return ((p, s, alive), sums, count + ok.astype(wide), firsts), None

    def evaluate(p, alive):
        logits, dead = _forward(plan, p, x_train, dead=True)
        test_logits = _forward(plan, p, x_test)
        out = {"train_loss": _loss(plan, logits, y_train), "test_loss": _loss(plan, test_logits, y_test),
               "weight_std": _weight_std(plan, p), "dead_fraction": dead}
        if plan.task == "classification":
            out["train_accuracy"] = _accuracy(plan, logits, y_train)
            out["test_accuracy"] = _accuracy(plan, test_logits, y_test)
        return {k: jnp.where(alive, v, jnp.nan) for k, v in out.items()}

    names = ("grad_norm", "update_norm", "grad_w_norm")
    zero_sums = (jnp.zeros((), wide), jnp.zeros((), wide), jnp.zeros((plan.depth + 1,), wide))

    def chunk(carry, k):
        steps = k * plan.chunk_steps + jnp.arange(plan.chunk_steps, dtype=jnp.int32)
        inner = (carry, zero_sums, jnp.zeros((), wide), zero_sums)
        (carry, sums, count, firsts), _ = jax.lax.scan(step, inner, steps)
        means = {n: jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan)
                 for n, total in zip(names, sums, strict=True)}
        return carry, ({**evaluate(carry[0], carry[2]), **means}, dict(zip(names, firsts, strict=True)))

    alive0 = jnp.ones((), bool)
    ev0 = evaluate(params, alive0)
    (final, _, alive), (evals, firsts) = jax.lax.scan(chunk, (params, opt, alive0),
                                                      jnp.arange(plan.n_chunks, dtype=jnp.int32))
    ev0.update({n: a[0] for n, a in firsts.items()})
    out = {n: jnp.concatenate([ev0[n][None], evals[n]]) for n in evals}  # (n_eval, ...)
    out["diverged"] = ~alive
    out["distinct_units"] = _distinct_units(plan, final)
    if plan.lsuv:  # what LSUV reached on its fit batch, per layer (NaN: not an LSUV entry)
        out["lsuv_variance"] = jnp.where(is_lsuv, _fit_variances(plan, params, x_fit), jnp.nan)
    return out
