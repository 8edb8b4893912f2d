"""Threefry-2x32 written out as one array expression: ``jax.random``'s numbers, compiled faster on CPU.

``jax.random.bits`` and ``jax.random.fold_in`` hash counters with Threefry-2x32 (20 rounds, Salmon
et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011). On the CPU, JAX lowers that hash
as a rolled loop (5 trips of 4 rounds); XLA then compiles each call site into two large loop
kernels, one per output word, each recomputing the rounds. In the sweep's program these kernels
were most of XLA's compile time (measured on 2 cores: 1.8 s of compile with the rolled loops, about
1.0 s with the rounds unrolled, run time unchanged). Here the 20 rounds are plain ``jnp`` integer
operations, which XLA fuses into one elementwise kernel per call site, as JAX itself lowers the
hash on GPUs and TPUs.

The numbers are JAX's, bit for bit (tests/test_prng.py compares them with ``jax.random.bits``
and ``jax.random.fold_in`` eagerly, under ``jit`` and ``vmap``). Keys of any other PRNG
implementation, or the non-partitionable counter layout (``jax_threefry_partitionable=False``), go
to ``jax.random`` unchanged.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

# The key scheme (one home; nets, the sweep engine and the results folder's description use it).
# fold_in index of a network key's bias branch: 2**31 - 1, far beyond any layer index.
BIAS_STREAM = 2**31 - 1
# fold_in index of the data branch of a sweep's root key: inputs and targets never reuse a layer key.
DATA_BRANCH = 2**31 - 1
# How a sweep's numbers follow from its keys, as written into every results folder's meta.json.
RANDOM_SCHEME = (
    "Layer l of seed s draws its weights with the initializer from "
    "fold_in(fold_in(jax.random.key(base_seed), s), l) (base_seed = {base_seed}); the key does not "
    "depend on the initializer or the grid point, so every initializer and grid point sees the same "
    "underlying noise for the same (seed, layer) (common random numbers: comparisons are paired). "
    "Seed ids are the s above; results do not depend on chunking or device count."
)

# Rotation constants of Threefry-2x32, alternating every four rounds, and the key-schedule parity.
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
KEY_PARITY = 0x1BD11BDA


@jax.jit  # traced once per shape: the sweep's program traces this body several times otherwise
def threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32 block function with 20 rounds: key words ``(k0, k1)``, counter words ``(x0, x1)``
    (uint32, broadcastable) -> the two uint32 output words.

    Rounds: ``x0 += x1; x1 = rotl(x1, r) ^ x0``, rotations ``ROTATIONS[0]`` then ``ROTATIONS[1]``,
    alternating; after every four rounds key word ``s`` of ``(k0, k1, k0 ^ k1 ^ 0x1BD11BDA)`` is
    injected: ``x0 += ks[(s + 1) % 3]``, ``x1 += ks[(s + 2) % 3] + s + 1``.
    """
    u32 = jnp.uint32
    k0, k1, x0, x1 = (jnp.asarray(v, u32) for v in (k0, k1, x0, x1))
    ks = (k0, k1, k0 ^ k1 ^ u32(KEY_PARITY))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for s in range(5):
        for r in ROTATIONS[s % 2]:
            x0 = x0 + x1
            x1 = jax.lax.shift_left(x1, u32(r)) | jax.lax.shift_right_logical(x1, u32(32 - r))
            x1 = x0 ^ x1
        x0 = x0 + ks[(s + 1) % 3]
        x1 = x1 + ks[(s + 2) % 3] + u32(s + 1)
    return x0, x1


def _one_threefry_key(key) -> bool:
    """Whether ``key`` is *one* key that ``jax.random`` would hash with Threefry-2x32 in the
    partitionable layout, without a warning: a typed key of shape ``()``, or a raw ``uint32[2]``
    key while the default implementation is Threefry and raw keys are allowed silently.

    Typed and raw keys are told apart by dtype (``jax.dtypes.prng_key``), never by shape: a typed
    key array of shape ``(2,)`` is a batch of two keys, a raw ``uint32[2]`` is one key. Everything
    else (batches, other implementations, invalid key data) goes to ``jax.random``, which draws,
    warns or raises exactly as it does.
    """
    if not jax.config.jax_threefry_partitionable:
        return False
    dtype = getattr(key, "dtype", None)
    if dtype is None:
        return False
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return np.shape(key) == () and str(jax.random.key_impl(key)) == "threefry2x32"
    return (isinstance(key, jax.Array | np.ndarray) and dtype == np.uint32 and np.shape(key) == (2,)
            and jax.config.jax_default_prng_impl == "threefry2x32"
            and jax.config.jax_legacy_prng_key == "allow" and not jax.config.jax_enable_custom_prng)


def check_key(key, where: object) -> None:
    """Raise as ``jax.random`` does unless ``key`` is one PRNG key, naming ``where`` and the key.

    ``TypeError`` for what is not key data (a non-array, a raw array whose trailing shape or
    dtype is not a key's); ``ValueError`` for a batch of keys (``jax.random.split(key, 2)``): draw
    a batch with ``jax.vmap``. The exception types are ``jax.random``'s.
    """
    if _one_threefry_key(key):
        return
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        typed = key
    elif isinstance(key, jax.Array | np.ndarray | np.generic | int):
        try:
            typed = jax.random.wrap_key_data(jnp.asarray(key))
        except TypeError as err:
            dtype = key.dtype if hasattr(key, "dtype") else np.asarray(key).dtype  # tracers too
            raise TypeError(f"{where} needs a PRNG key (jax.random.key(seed), or a raw uint32[2] "
                            f"key); got key of shape {np.shape(key)} and dtype {dtype}: "
                            f"{err}") from None
    else:
        raise TypeError(f"{where} needs a PRNG key (jax.random.key(seed), or a raw uint32[2] key); "
                        f"got key={key!r} of type {type(key).__name__}.")
    if typed.ndim:
        raise ValueError(f"{where} accepts a single key, but was given key=<key array of shape "
                         f"{np.shape(key)}, dtype {key.dtype}>: shape {np.shape(key)} != (). Use "
                         "jax.vmap for batching.")


def _key_words(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return data[..., 0], data[..., 1]


def bits(key: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
    """``jax.random.bits(key, shape, dtype)`` for one key (vmap it for many), bit for bit.

    Element ``i`` (row-major flat index, split into 32-bit words ``(hi, lo)``) is
    ``y0 ^ y1`` of ``threefry2x32(key, hi, lo)`` for widths up to 32 bits (truncated below 32),
    and ``y0 << 32 | y1`` for 64 bits.
    """
    if not _one_threefry_key(key):
        return jax.random.bits(key, shape, dtype)
    shape = tuple(int(d) for d in shape)
    dt = np.dtype(dtype)
    width = dt.itemsize * 8
    if (math.prod(shape) >= 2**32 or dt.kind != "u" or width not in (8, 16, 32, 64)
            or jax.dtypes.canonicalize_dtype(dt) != dt):  # uint64 without x64: JAX's warning, JAX's bits
        return jax.random.bits(key, shape, dtype)
    k0, k1 = _key_words(key if isinstance(key, jax.Array) else jnp.asarray(key))
    if not shape:
        lo = jnp.zeros((), jnp.uint32)
    else:
        lo = jax.lax.broadcasted_iota(jnp.uint32, (math.prod(shape),), 0).reshape(shape)
    y0, y1 = threefry2x32(k0, k1, jnp.zeros((), jnp.uint32), lo)
    if width == 64:
        return jax.lax.shift_left(y0.astype(jnp.uint64), jnp.uint64(32)) | y1.astype(jnp.uint64)
    out = y0 ^ y1
    return out if width == 32 else out.astype(dt)


def fold_in(key: jax.Array, data) -> jax.Array:
    """``jax.random.fold_in(key, data)``, bit for bit: the key words become
    ``threefry2x32(key, 0, uint32(data))``. A batch of keys or vector ``data`` is refused by
    ``jax.random.fold_in`` itself (use ``jax.vmap``)."""
    if np.ndim(data) or not _one_threefry_key(key):
        return jax.random.fold_in(key, data)
    key = key if isinstance(key, jax.Array) else jnp.asarray(key)
    k0, k1 = _key_words(key)
    y0, y1 = threefry2x32(k0, k1, jnp.zeros((), jnp.uint32), jnp.asarray(data, dtype="uint32"))
    words = jnp.stack([y0, y1])
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(words, impl=jax.random.key_impl(key))
    return words
