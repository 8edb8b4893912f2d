"""Process settings for the tests (before JAX starts) and the doctest namespace.

* ``--xla_cpu_enable_concurrency_optimized_scheduler=false``: with jaxlib 0.10.2 on 2 CPU cores,
  a vmapped program with two or more QRs whose R factor is used can deadlock (every XLA thread
  idle); the old scheduler does not. Child processes inherit it.
* ``OPENBLAS_NUM_THREADS=1``: JAX's CPU QR goes through SciPy's OpenBLAS, whose threads fight
  XLA's on 2 cores (a 256x256 QR took 0.5-1 s instead of 2-3 ms).
* The backend starts here, with the environment's device count, so an in-process ``jaxinit
  sweep`` (whose CLI asks for one CPU device per core) cannot change it for the tests after it.
"""

from jaxinit.runtime import configure_process

configure_process()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jaxinit  # noqa: E402

jax.devices()


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace.update(jax=jax, jnp=jnp, np=np, jaxinit=jaxinit)
