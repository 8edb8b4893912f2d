"""jaxinit: weight initializers for JAX/Flax, and a laboratory for how signals cross depth.

Everything public is re-exported here; read this file to see the whole API.

* the catalog (``jaxinit.he_normal``, ``jaxinit.get``, ``jaxinit.describe``, ...): ``jaxinit.initializers``;
* the network: ``jaxinit.nets`` (functional MLP), ``jaxinit.MLP`` (flax.linen), ``jaxinit.NnxMLP`` (flax.nnx);
* measurement and theory: ``jaxinit.probes`` (``trace`` -> ``Trace``), ``jaxinit.theory``;
* the sweep: ``jaxinit.config`` -> ``jaxinit.sweep`` -> ``jaxinit.results`` -> ``jaxinit.plots``;
* re-initializing a model you did not write: ``jaxinit.reinit``.
"""

from typing import TYPE_CHECKING

from jaxinit import activations, config, nets, probes, results, sweep, theory
from jaxinit.initializers import *  # noqa: F403  (the catalog; its __all__ is the list)
from jaxinit.initializers import __all__ as _catalog_all
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
    "MLP", "NnxMLP", "Trace", "__version__", "activations", "config", "critical", "critical_init", "nets",
    "probes", "reinit", "results", "sweep", "theory", "trace",
]
