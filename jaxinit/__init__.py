"""jaxinit: weight initializers for JAX/Flax, and a laboratory for how signals cross depth.

Everything public is re-exported here; read this file to see the whole API.

* the catalog (``jaxinit.he_normal``, ``jaxinit.get``, ``jaxinit.describe``, ...): ``jaxinit.initializers``;
* the network: ``jaxinit.nets`` (functional MLP), ``jaxinit.MLP`` (flax.linen), ``jaxinit.NnxMLP`` (flax.nnx);
* measurement and theory: ``jaxinit.probes`` (``trace`` -> ``Trace``), ``jaxinit.theory``;
* the laboratory: ``jaxinit.lab`` -- ``lab.config`` -> ``lab.engine`` -> ``lab.store`` -> ``lab.figures``,
  composed by ``lab.run`` (sweeps) and ``lab.training`` (training runs), across processes by ``lab.cluster``;
* data-dependent init (LSUV): ``jaxinit.lsuv``, ``lsuv_linen``, ``lsuv_nnx``, the spec ``jaxinit.LSUV``;
* re-initializing a model you did not write: ``jaxinit.reinit``; process settings: ``jaxinit.runtime``.

The folders are the layers; each imports only from those below it (pyproject.toml's import-linter
contracts, run by ``make test``)::

    cli                                   `jaxinit ...`: prints and exits            (top)
    bench                                 the benchmark harness and its workers
    lab.cluster                           jax.distributed: many processes and hosts, one results folder
    lab.training                          a training run: config -> data -> engine -> store
    lab.run                               config -> engine -> store, progress, resume, stall watchdog
    lab.figures, lab.report               figures and verdicts from a results folder
    lab.store                             the results folder: writer, reader, summary.csv
    lab.engine                            compiled programs: pure (plan, keys) -> arrays, no files
    lab.config, lab.data, lab.optim       TOML -> frozen, validated configs; offline data; optax by name
    lsuv, reinit                          data-dependent and after-the-fact initialization
    probes, theory                        measurement and mean-field theory
    nets                                  the MLP: functional core + linen + nnx faces
    initializers                          the catalog
    activations, errors, runtime, _gauss, _linalg, _prng, _io, _stats, _toml   shared pieces (bottom)
"""

from typing import TYPE_CHECKING

from jaxinit import activations, lab, nets, probes, runtime, theory
from jaxinit.initializers import *  # noqa: F403  (the catalog; its __all__ is the list)
from jaxinit.initializers import __all__ as _catalog_all
from jaxinit.lsuv import LSUV, lsuv, lsuv_linen, lsuv_nnx
from jaxinit.probes import Trace, trace
from jaxinit.reinit import reinit
from jaxinit.theory import critical, critical_init

if TYPE_CHECKING:  # imported lazily by __getattr__ below
    from jaxinit.nets import MLP, NnxMLP

# The Flax faces import Flax (~0.4 s); they load on first use so a sweep does not pay for them.
def __getattr__(name):
    if name in ("MLP", "NnxMLP"):
        return getattr(nets, name)
    raise AttributeError(f"module 'jaxinit' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    *_catalog_all,
    "LSUV", "MLP", "NnxMLP", "Trace", "__version__", "activations", "critical", "critical_init", "lab",
    "lsuv", "lsuv_linen", "lsuv_nnx", "nets", "probes", "reinit", "runtime", "theory", "trace",
]
