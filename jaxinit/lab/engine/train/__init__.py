r"""The training engine: every member of one network shape trains in one compiled program.

A *member* is one (initializer ``i``, grid point ``g``, seed ``s``). Structure of the program
(:func:`compile_train`, one per :class:`TrainPlan`):

* seeds train in blocks: a block of ``block`` seeds is one call of a compiled single-device
  program, loaded unchanged on every local device, and a chunk's blocks are spread over the
  devices (only its last block is padded): a member's numbers depend on neither the chunk it
  landed in nor the device count;
* a block's members (seed x initializer x grid point, initializer-major ``k = i * n_grid + g``
  within a seed) are stacked, parameters and optimizer states alike, and trained ``group`` at a
  time under ``vmap`` (``lax.map`` over the groups, :func:`layout`): all of them at once on
  accelerators; on the CPU as many as keep their training state within a core's cache, one at a
  time for wide networks, whose matmuls run no faster batched there;
* each member's training is a ``lax.scan`` over evaluation chunks, each a ``lax.scan`` of
  ``eval_every`` steps (the last chunk's steps beyond ``steps`` are masked out): no Python loop
  over members or steps, compile time flat in the number of steps.

Keys (the sweep's scheme, so the weights are :func:`jaxinit.nets.init`'s): the seed key is
``fold_in(key(base_seed), s)``, layer ``l`` draws from ``fold_in(seed_key, l)`` (biases from the
nets bias branch, :func:`jaxinit.nets.layer_keys`); the key does not depend on the initializer
(common random numbers). A grid ``weight_variance`` rescales each layer's kernel to
``sigma_w^2 = fan_in * E[W^2]`` (an initializer with ``E[W^2] = 0`` keeps its weights); a grid
``bias_variance`` draws biases ``N(0, sigma_b^2)`` from the layer's bias key; a grid
``learning_rate`` is a traced per-member value (``optax.inject_hyperparams``). The minibatch order
of seed ``s`` comes from its data key ``fold_in(fold_in(key(base_seed), DATA_BRANCH), s)``:
epoch ``e`` is the permutation ``jax.random.permutation(fold_in(data_key, e), n_train)``, cut into
``n_train // batch`` minibatches (the remainder is dropped); every initializer and grid point of
the seed sees the same minibatches (common random numbers).

Non-finite values: a step whose loss, raw-gradient norm or update norm is not finite is not
applied; the member is marked ``diverged``, stops updating, and its later evaluations are NaN.
The others train on.

What is recorded (:data:`EVAL_FIELDS`, :data:`EVAL_LAYER_FIELDS`, :data:`MEMBER_FIELDS`), every
evaluation at steps ``0, e, 2e, ..., steps`` (:func:`eval_steps`; ``e = min(eval_every, steps)``):

* ``train_loss``, ``train_accuracy``: on the whole training set; ``test_loss``, ``test_accuracy``:
  on the test set (accuracies for classification only);
* ``grad_norm`` (global norm of the raw minibatch gradient, before clipping) and ``update_norm``
  (global norm of the applied update): the mean over the steps since the previous evaluation; at
  step 0, the first step's;
* per layer ``l = 0 .. depth`` (``depth`` the readout): ``grad_w_norm`` (norm of the kernel's raw
  gradient, mean over the chunk as above), ``weight_std`` (std of the kernel's entries); per hidden
  layer ``l = 0 .. depth-1``: ``dead_fraction`` (units with ``|phi'(h)| < 1e-6`` on every training
  example, as :mod:`jaxinit.probes` defines it);
* per member: ``final_train_loss``, ``final_test_loss``, ``final_test_accuracy``,
  ``best_test_accuracy``, ``steps_to_loss`` (first evaluated step with ``train_loss <= target_loss``),
  ``steps_to_accuracy`` (first evaluated step with ``test_accuracy >= target_accuracy``), NaN when
  never reached (present only when the plan sets the target), ``diverged``, and per hidden layer
  ``distinct_units``: how many of the layer's units (kernel column and bias) differ from every
  other, two units being the same when ``max|u_i - u_j| <= 1e-4 * max(max|u_i|, max|u_j|)``
  (1 when all units stayed identical, ``width`` when none did: the symmetry problem, measured).
* per LSUV member and layer ``l = 0 .. depth``: ``lsuv_variance``, the output variance its fit reached
  on the seed's first minibatch (NaN for other initializers).

Modules: :mod:`~jaxinit.lab.engine.train.plan` (the plan, optimizers and schedules by name, the
grid), :mod:`~jaxinit.lab.engine.train.seed` (one seed's parameters, training scan and
evaluations), :mod:`~jaxinit.lab.engine.train.program` (programs, chunks of seeds, the per-member
records, :func:`train_members`). The names below are the engine's surface.
"""

from jaxinit.lab.engine.train.plan import (
    CYCLICAL,
    DATA_BRANCH,
    DEAD_THRESHOLD,
    DISTINCT_RTOL,
    EVAL_FIELDS,
    EVAL_LAYER_FIELDS,
    LOSSES,
    MEMBER_FIELDS,
    Schedule,
    TrainPlan,
    cyclical_schedule,
    eval_steps,
    grid_arrays,
    make_optimizer,
    make_schedule,
    optimizer_names,
    schedule_names,
)
from jaxinit.lab.engine.train.program import (
    CPU_GROUP_BYTES,
    Layout,
    Program,
    compile_train,
    layout,
    member_bytes,
    run_chunk,
    train_members,
)

__all__ = [
    "CPU_GROUP_BYTES", "CYCLICAL", "DATA_BRANCH", "DEAD_THRESHOLD", "DISTINCT_RTOL", "EVAL_FIELDS", "EVAL_LAYER_FIELDS",
    "LOSSES", "Layout", "MEMBER_FIELDS", "Program", "Schedule", "TrainPlan", "compile_train", "cyclical_schedule",
    "eval_steps", "grid_arrays", "layout", "make_optimizer", "make_schedule", "member_bytes", "optimizer_names",
    "run_chunk", "schedule_names", "train_members",
]
