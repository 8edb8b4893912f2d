r"""Mean-field theory of signal propagation through deep random MLPs, for any elementwise activation.

Conventions (what every function here computes)
------------------------------------------------
The network: an input :math:`x \in \mathbb{R}^{n_0}`, pre-activations

.. math::  h^1 = W^1 x + b^1, \qquad h^{l+1} = W^{l+1} \phi(h^l) + b^{l+1}, \quad l = 1, \dots, L-1,

with i.i.d. :math:`W^l_{ij} \sim N(0, \sigma_w^2 / \mathrm{fan\_in})` (``fan_in`` = width of the
layer's input, :math:`n_0` for layer 1) and :math:`b^l_i \sim N(0, \sigma_b^2)`. Public arguments
spell the symbols out: ``weight_variance`` is :math:`\sigma_w^2`, ``bias_variance`` is
:math:`\sigma_b^2`. Predictions are for infinite width (averages over weights), per layer
:math:`l = 1..L` of the *pre-activations* :math:`h^l`.

* ``q`` -- :math:`q_l = \frac{1}{N_l}\sum_i (h^l_i)^2`, the second moment of layer ``l``'s
  pre-activations for one input; ``q0`` is the input's :math:`\mathrm{mean}(x^2)`.
* Length map: :math:`q_1 = \sigma_w^2 q_0 + \sigma_b^2` (the first layer is linear in :math:`x`),
  then :math:`q_{l+1} = \sigma_w^2 E[\phi(\sqrt{q_l} z)^2] + \sigma_b^2`, :math:`z \sim N(0, 1)`.
* ``q_star`` -- :math:`q^*`, the fixed point of the length map (``inf`` when it diverges).
* ``c`` -- :math:`c_l = q^l_{ab} / q_l`, the correlation of the pre-activations of two inputs
  :math:`x_a, x_b` of equal second moment, :math:`q^l_{ab} = \frac{1}{N_l}\sum_i h^l_{a,i} h^l_{b,i}`;
  ``c0`` is the inputs' cosine similarity. Correlation map: :math:`c_1 = (\sigma_w^2 q_0 c_0 +
  \sigma_b^2) / q_1`, then :math:`c_{l+1} = (\sigma_w^2 E[\phi(u)\phi(v)] + \sigma_b^2) / q_{l+1}`,
  :math:`(u, v)` centred Gaussian with variance :math:`q_l` and correlation :math:`c_l`. It is
  computed as :math:`1 - c_{l+1} = \sigma_w^2 \tfrac12 E[(\phi(u) - \phi(v))^2] / q_{l+1}` (exact,
  since :math:`u` and :math:`v` have one law), which keeps :math:`1 - c` accurate as :math:`c \to 1`.
* ``c_star`` -- :math:`c^*`, the fixed point of the correlation map at :math:`q^*` reached from
  :math:`c < 1`: 1 in the ordered phase, below 1 in the chaotic phase.
* ``chi1`` -- :math:`\chi_1 = \sigma_w^2 E[\phi'(\sqrt{q^*} z)^2]`, the slope of the correlation
  map at :math:`c = 1`; ordered :math:`\chi_1 < 1`, chaotic :math:`\chi_1 > 1`, critical (edge of
  chaos) :math:`\chi_1 = 1`.
* ``chi_c`` -- slope of the correlation map at :math:`c^*`: :math:`\sigma_w^2 E[\phi'(u)\phi'(v)]`
  at :math:`(q^*, c^*)` (:math:`= \chi_1` when :math:`c^* = 1`).
* ``chi_q`` -- slope of the length map at :math:`q^*`: :math:`\sigma_w^2 E[\phi(x)\phi'(x)\,x] / q^*`,
  :math:`x \sim N(0, q^*)` (Stein's lemma turns :math:`\sigma_w^2 E[\phi'^2 + \phi\phi'']` into this
  form, which needs no :math:`\phi''` and so holds for ReLU).
* ``xi_q``, ``xi_c`` -- depth scales :math:`\xi = -1/\log\chi` (Schoenholz et al. 2017);
  :math:`|q_l - q^*|` and :math:`|c_l - c^*|` shrink like :math:`e^{-l/\xi}`; ``inf`` when
  :math:`\chi \ge 1` (to within 1e-13, the quadrature's resolution).
* ``jacobian_msv`` -- of :math:`J_l = \partial h^l / \partial x` (:math:`N_l \times n_0`), as
  :mod:`jaxinit.probes` measures it: :math:`\mathrm{tr}(J_l J_l^\top) / N_l = E_v\|J_l v\|^2 / N_l`
  for :math:`v \sim N(0, I_{n_0})` (the mean squared singular value when :math:`N_l \le n_0`)
  :math:`= \sigma_w^2 \prod_{k<l} \sigma_w^2 E[\phi'(\sqrt{q_k} z)^2]`, whatever the widths;
  :math:`\sigma_w^2 \chi_1^{l-1}` at the fixed point.

Where :math:`q^* = \infty` (unbounded activations with :math:`\chi_1 > 1`, e.g. ReLU above
:math:`\sigma_w^2 = 2`), quantities "at :math:`q^*`" are their limits, taken at :math:`q = 10^{12}`.

Numerics: closed forms for ``linear``, ``relu``, ``leaky_relu`` (arc-cosine kernels) and ``erf``
(arcsine kernel), and for the length map and :math:`E[\phi'^2]` of ``elu``/``selu``; everything
else by the piecewise Gauss-Legendre rule of ``jaxinit._gauss`` (kinks cut, ~1e-13), always in
float64 whatever the process's x64 setting. :math:`\phi'` of a callable is ``jax.grad``. Fixed points
and the critical line are found by bracketing root-finders: no starting bracket on
:math:`\sigma_w^2` is needed, because the critical line is solved in :math:`q^*`
(:math:`\sigma_w^2 = 1 / E[\phi'(\sqrt{q^*} z)^2]` and the fixed-point equation together).

Every function returns Python floats (or NumPy float64 arrays); none is traced by ``jax.jit``.

References:
  Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli, "Exponential expressivity in deep neural networks
  through transient chaos", NeurIPS 2016, arXiv:1606.05340.
  Schoenholz, Gilmer, Ganguli & Sohl-Dickstein, "Deep Information Propagation", ICLR 2017,
  arXiv:1611.01232.
  Cho & Saul, "Kernel Methods for Deep Learning", NeurIPS 2009 (arc-cosine kernels).
  Williams, "Computing with Infinite Networks", NeurIPS 1996 (the erf kernel).
"""

from __future__ import annotations

from jaxinit.theory.criticality import NoEdgeOfChaos, critical, critical_init
from jaxinit.theory.maps import c_map, c_star, chi1, chi_c, chi_q, depth_scales, phase, q_map, q_star
from jaxinit.theory.moments import CRITICAL_TOL, _moments  # noqa: F401  (_moments: reached by tests)
from jaxinit.theory.predictions import NetSpec, Prediction, forward, jacobian_msv, predict

# The public home of the error type (tracebacks and docs name jaxinit.theory.NoEdgeOfChaos).
NoEdgeOfChaos.__module__ = __name__

__all__ = [
    "CRITICAL_TOL", "NetSpec", "NoEdgeOfChaos", "Prediction", "c_map", "c_star", "chi1", "chi_c", "chi_q",
    "critical", "critical_init", "depth_scales", "forward", "jacobian_msv", "phase", "predict", "q_map", "q_star",
]
