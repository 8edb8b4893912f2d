"""LAPACK calls one matrix at a time on the CPU: no program jaxinit compiles can deadlock there.

Why. jaxlib 0.10's CPU LAPACK kernels (QR ``geqrf``, ``orgqr``, ``ormqr``, SVD, eigh, Cholesky,
LU, triangular solve; ``jaxlib/cpu/lapack_kernels.cc``) split a *batch* of matrices into chunks,
schedule the chunks on XLA's intra-op thread pool and block (``absl::BlockingCounter::Wait``) until
they finish (``ParallelBatchMap``), whenever the batch is large enough (batch x FLOP estimate >=
2e5) and the pool has more than one thread. The calling thread is itself a worker of that pool
and does not help while it waits. So when every pool thread is inside such a kernel at once, the
chunks they scheduled can never run: every XLA thread sleeps and the program never ends. The pool
has one thread per usable core and is shared by all CPU devices, so it happens when ``cores``
batched LAPACK calls run at the same time: one per device in a sharded program (the sweep with
one CPU device per core: ``configs/isometry.toml`` hung on 2 cores in the spectrum's batched SVD
on both devices), or independent calls that XLA's thunk executor runs concurrently in one program
(the vmapped-QR hang the concurrency-optimized scheduler made likely; see :mod:`jaxinit.runtime`).
jaxlib 0.11 builds the parallel path out of open-source wheels; jaxinit pins ``jax<0.11``.

Fix. A batch of one never leaves the calling thread (``chunk_size >= batch_count`` runs inline),
so every LAPACK call jaxinit emits on the CPU is given exactly one matrix: under ``jax.vmap``
(a ``jax.custom_batching.custom_vmap`` rule) and over leading batch dimensions the matrices go
through a ``lax.map``, one custom call per matrix. No LAPACK kernel then ever waits on the pool,
whatever the number of devices, cores or concurrent operations. The numbers are those of the
single-matrix call; measured on 2 cores, vmapped orthogonal draws cost the same (128x128, 64 keys:
50 ms against 54 ms batched) or slightly more for tiny matrices (8x8, 1024 keys: 2.5 ms against
2.0 ms). Other backends keep batched calls in chunks (GPUs' kernels do not wait on a host pool).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def lapack_chunk(chunk: int) -> int:
    """Matrices per batched linear-algebra call under ``jax.vmap``: 1 on the CPU (see the module
    notes), ``chunk`` elsewhere."""
    return 1 if jax.default_backend() == "cpu" else max(1, int(chunk))


def matrix_at_a_time(fn: Callable[..., jax.Array], chunk: int = 1) -> Callable[..., jax.Array]:
    """``fn`` of matrices, which under ``jax.vmap`` runs as a ``lax.map`` over vmapped chunks of
    ``lapack_chunk(chunk)`` matrices (one at a time for 1), never as one batched LAPACK call.

    Each matrix's result is the one an unbatched call gives. Nested vmaps peel off one at a time.
    """
    @jax.custom_batching.custom_vmap
    def mapped(*args):
        return fn(*args)

    @mapped.def_vmap
    def _batch(axis_size, in_batched, *args):
        if not any(in_batched):
            return mapped(*args), False
        args = tuple(a if batched else jnp.broadcast_to(a, (axis_size, *a.shape))
                     for a, batched in zip(args, in_batched, strict=True))
        size = lapack_chunk(chunk)
        if size >= axis_size:
            return jax.vmap(fn)(*args), True
        return jax.lax.map(lambda xs: mapped(*xs), args, batch_size=size if size > 1 else None), True

    return mapped


def _singular_values_stack(x: jax.Array) -> jax.Array:
    lead, (m, n) = x.shape[:-2], x.shape[-2:]
    if not lead:
        return jnp.linalg.svd(x, compute_uv=False)
    flat = x.reshape(-1, m, n)
    if lapack_chunk(flat.shape[0]) >= flat.shape[0]:
        sv = jnp.linalg.svd(flat, compute_uv=False)
    else:
        sv = jax.lax.map(lambda a: jnp.linalg.svd(a, compute_uv=False), flat)
    return sv.reshape(*lead, min(m, n))


_singular_values = matrix_at_a_time(_singular_values_stack)


def singular_values(x: jax.Array) -> jax.Array:
    r"""``jnp.linalg.svd(x, compute_uv=False)``: the singular values :math:`\sigma_1 \ge \dots \ge
    \sigma_{\min(m, n)}` of each ``(m, n)`` matrix in ``x[..., m, n]``, computed by LAPACK one
    matrix per call on the CPU (over leading dimensions and under ``jax.vmap``; see the module notes).
    """
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"singular_values needs an array with at least 2 dims (..., m, n); got shape {x.shape}.")
    return _singular_values(x)
