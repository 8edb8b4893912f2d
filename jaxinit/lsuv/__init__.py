r"""LSUV, layer-sequential unit-variance initialization (Mishkin & Matas, 2015).

Start from weights a base initializer drew (orthogonal in the paper), then, layer by layer in the
order the layers run, rescale the layer's kernel until the variance of its output (the
pre-activation) on a data batch is ``target``:

.. code-block:: text

    for each layer l, in forward order (earlier layers already rescaled):
        repeat at most max_iter times, while |Var(h^l) - target| >= tol:
            W^l <- W^l * sqrt(target / Var(h^l))

``Var`` is taken over the whole output of the layer on the batch (all examples, units and spatial
positions), as in the paper. The layer's output is affine in its kernel,
``h(s W) = s (h(W) - h(0)) + h(0)`` (``h(0)`` is the bias, broadcast), so the iteration runs on
that scalar ``s`` after one evaluation of ``h(W)`` and ``h(0)`` per layer: the same iterates as
the paper's forward passes, at the cost of two. With a zero bias the first rescaling is exact;
a bias makes more iterations necessary, and a bias whose spread over units alone exceeds the
target makes the target unreachable.

A layer that has not reached ``|Var - target| < tol`` after ``max_iter`` rescalings keeps its
last scale; the eager functions then emit one :class:`LSUVWarning` per such layer, naming it
and the variance reached. Everything is pure and jit-able (``lax.while_loop`` per layer): under
``jit``/``vmap`` no warning can be raised, so pass ``return_stats=True`` and read
:class:`LSUVStats`; under ``vmap`` each member iterates on its own (a member that has reached
its tolerance stops changing while the others go on), so a member's result is the result it
gets alone.

Three faces: :func:`lsuv` (the functional MLP of :mod:`jaxinit.nets`), :func:`lsuv_linen`
(any ``flax.linen`` model: its ``Dense``/``Conv`` layers), :func:`lsuv_nnx` (any ``flax.nnx``
model: its ``Linear``/``Conv`` layers), and :class:`LSUV`, the frozen spec value a config names.

References:
  D. Mishkin, J. Matas (2015). All you need is a good init. ICLR 2016, arXiv:1511.06422.

Modules: :mod:`~jaxinit.lsuv.core` (the iteration, the stats, the functional :func:`lsuv`),
:mod:`~jaxinit.lsuv.flax_faces` (:func:`lsuv_linen`, :func:`lsuv_nnx`), :mod:`~jaxinit.lsuv.spec`
(:class:`LSUV`). (``jaxinit.lsuv`` is the function; this package is ``sys.modules["jaxinit.lsuv"]``.)
"""

from jaxinit.lsuv.core import LSUVStats, LSUVWarning, lsuv
from jaxinit.lsuv.flax_faces import lsuv_linen, lsuv_nnx
from jaxinit.lsuv.spec import LSUV

__all__ = ["LSUV", "LSUVStats", "LSUVWarning", "lsuv", "lsuv_linen", "lsuv_nnx"]
