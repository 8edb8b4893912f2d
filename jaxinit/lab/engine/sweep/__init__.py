"""The sweep engine: seeds x initializers x grid points through depth, in one compiled program.

Structure of one compiled program (one per distinct (depth, width, activation)):

* seeds are computed in blocks: a vmap of a fixed width (:func:`seed_block`, a function of the
  program and the seed count alone) is one compiled single-device program, loaded unchanged on
  every local device, and a chunk's blocks are spread over the devices (:class:`ChunkPlan`). So a
  seed's numbers depend on neither the chunk it landed in, nor the device count, nor the memory
  budget (which only bounds the blocks in flight);
* per seed, a ``lax.scan`` over layers draws each layer's weights inside the step from
  ``fold_in(fold_in(root_key, seed), layer)``: memory and compile time do not grow with depth;
* every (initializer, grid point) pair of the seed — a *combo* — runs in the same step. Initializers
  that share a base distribution (he/glorot/lecun normals, ``normal(stddev)``, ...) are *common
  random numbers*: the raw noise of a layer is drawn once per group and each combo applies its own
  factor to the matmul's output, ``h = f_k (x @ Z) + b``. One large matmul per group and layer
  replaces one per initializer. Groups whose draws are maps of ``jax.random.bits`` of one shape
  (normal, truncated normal and uniform noise, orthogonal's Gaussian: ``BaseInitializer.bits_shape``)
  share the layer's bits, so the random-bit generator runs once per layer for all of them;
* gradient probes run a second, reversed scan that regenerates each layer's weights from its key
  and keeps only the post-activations of the forward pass (``O(depth * batch * width)`` per combo,
  never ``O(depth * width^2)``).

The weights a combo sees are exactly ``init(fold_in(seed_key, l), shape)`` scaled by the grid's
factor (bit for bit when no grid factor applies: see :func:`layer_weights`), so the sweep, the
functional MLP in :mod:`jaxinit.nets` and a user's own call agree. The engine never forms them:
it computes ``f_k (rows @ Z)``, and an initializer that can apply its draw without forming it
does so (:meth:`~jaxinit.initializers.BaseInitializer.apply_from_bits`; orthogonal applies its
Householder reflectors), so products agree with the formed weights' up to rounding. Non-finite values are recorded
(``first_nonfinite_layer``) and masked to NaN after that layer; they never raise. Underflow is
recorded too (``first_underflow_layer``: the first layer whose q fell below the smallest normal
number of the network's dtype, zero included), without masking: a signal that vanished to 0
measures as 0. Gradient underflow likewise (``first_grad_underflow_layer``: see
:func:`first_grad_underflow`).

Dtypes (:func:`precision_note`, recorded in ``meta.json``): noise is drawn and scaled in the
initializer's wide dtype (float32; float64 for float64). float32 and float64 networks run the
factored product above. A bfloat16/float16 network is computed as that network: each combo's
weights ``W_k = (f_k Z).astype(dtype)`` are formed (the initializer's own draw in the dtype, bit
for bit), inputs are rounded once to the dtype, and matmuls (``precision=HIGHEST``, accumulated as
XLA does on the device), bias adds, activations, tangents and backpropagation run in the dtype.
Every probe is reduced in float32 (float64 for float64) from the dtype's values; gradient norms
are scaled by their largest entry before squaring, so a gradient with a normal entry has a
non-zero norm. Integer arrays are int32 and constants are cast to the wide dtype, so a float32
sweep under ``JAX_ENABLE_X64`` gives the same numbers bit for bit.

Modules: :mod:`~jaxinit.lab.engine.sweep.plan` (the static plan, noise groups, keys),
:mod:`~jaxinit.lab.engine.sweep.inputs` (inputs and the readout loss),
:mod:`~jaxinit.lab.engine.sweep.layers` (the per-layer maps), :mod:`~jaxinit.lab.engine.sweep.seed`
(one seed's forward and backward scans), :mod:`~jaxinit.lab.engine.sweep.chunks` (programs, chunks,
devices, precision). The names below are the engine's surface.
"""

from jaxinit.initializers._random import random_bits
from jaxinit.lab.engine.sweep.chunks import (
    OUT_DIM,
    ChunkPlan,
    accumulation_dtype,
    bytes_per_seed,
    chunk_plan,
    compile_program,
    default_memory_budget,
    grid_arrays,
    lower_program,
    measure_chunk,
    plan_for,
    precision_note,
    seed_block,
)
from jaxinit.lab.engine.sweep.inputs import make_inputs, readout_loss_grad
from jaxinit.lab.engine.sweep.plan import (
    NoiseGroup,
    Plan,
    _crn_note,
    data_key,
    layer_weights,
    noise_group,
    seed_key,
)
from jaxinit.lab.engine.sweep.seed import first_grad_underflow, forward_stats

__all__ = [
    "OUT_DIM", "ChunkPlan", "NoiseGroup", "Plan", "_crn_note", "accumulation_dtype", "bytes_per_seed",
    "chunk_plan", "compile_program", "data_key", "default_memory_budget", "first_grad_underflow",
    "forward_stats", "grid_arrays", "layer_weights", "lower_program", "make_inputs", "measure_chunk",
    "noise_group", "plan_for", "precision_note", "random_bits", "readout_loss_grad", "seed_key",
    "seed_block",
]
