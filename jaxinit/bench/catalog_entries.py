"""The catalog benchmark's entries (:mod:`jaxinit.bench.catalog`): each jaxinit spec beside its namesakes
in ``jax.nn.initializers`` and ``torch.nn.init``, where those libraries have one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["Entry", "catalog_entries"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One catalog entry: the jaxinit spec, JAX's namesake (a factory of the initializer) and
    PyTorch's (a function filling a tensor in place), each ``None`` where that library lacks it."""

    name: str
    spec: Any
    jax: Callable[[], Any] | None = None
    torch: Callable[[Any], Any] | None = None


def catalog_entries() -> list[Entry]:
    """Every entry the benchmark times, JAX's namesakes first, then the ones only jaxinit has."""
    import jax.nn.initializers as J

    def t(fn_name: str, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        def fill(tensor: Any) -> Any:
            import torch
            return getattr(torch.nn.init, fn_name)(tensor, *args, **kwargs)
        return fill

    return [
        Entry("zeros", "zeros", lambda: J.zeros, t("zeros_")),
        Entry("ones", "ones", lambda: J.ones, t("ones_")),
        Entry("constant", {"name": "constant", "value": 0.3}, lambda: J.constant(0.3), t("constant_", 0.3)),
        Entry("normal", {"name": "normal", "stddev": 0.05}, lambda: J.normal(0.05), t("normal_", 0.0, 0.05)),
        Entry("uniform", {"name": "uniform", "scale": 0.1}, lambda: J.uniform(0.1), t("uniform_", 0.0, 0.1)),
        Entry("truncated_normal", {"name": "truncated_normal", "stddev": 0.05}, lambda: J.truncated_normal(0.05),
              t("trunc_normal_", 0.0, 0.05, -0.1, 0.1)),
        Entry("variance_scaling", {"name": "variance_scaling", "scale": 1.5, "mode": "fan_geo_avg",
                                   "distribution": "normal"},
              lambda: J.variance_scaling(1.5, "fan_geo_avg", "normal")),
        Entry("glorot_uniform", "glorot_uniform", J.glorot_uniform, t("xavier_uniform_")),
        Entry("glorot_normal", "glorot_normal", J.glorot_normal, t("xavier_normal_")),
        Entry("he_uniform", "he_uniform", J.he_uniform, t("kaiming_uniform_", nonlinearity="relu")),
        Entry("he_normal", "he_normal", J.he_normal, t("kaiming_normal_")),
        Entry("lecun_uniform", "lecun_uniform", J.lecun_uniform),
        Entry("lecun_normal", "lecun_normal", J.lecun_normal),
        Entry("orthogonal", {"name": "orthogonal", "scale": 1.3}, lambda: J.orthogonal(1.3), t("orthogonal_", 1.3)),
        Entry("delta_orthogonal", "delta_orthogonal", J.delta_orthogonal),
        # -- beyond JAX
        Entry("he_normal(normal)", {"name": "he_normal", "distribution": "normal"}, None, t("kaiming_normal_")),
        Entry("random_uniform", {"name": "random_uniform", "minval": -0.2, "maxval": 0.1}, None,
              t("uniform_", -0.2, 0.1)),
        Entry("trunc_normal", {"name": "trunc_normal", "mean": 0.1, "std": 0.02, "a": 0.08, "b": 0.15}, None,
              t("trunc_normal_", 0.1, 0.02, 0.08, 0.15)),
        Entry("relu_bias", "relu_bias"),
        Entry("prior_logit", {"name": "prior_logit", "p": 0.01}),
        Entry("dirac", {"name": "dirac", "scale": 0.5}, None, t("dirac_")),
        Entry("identity", {"name": "identity", "scale": 0.5}, None, t("eye_")),
        Entry("sparse", {"name": "sparse", "sparsity": 0.9, "stddev": 0.05}, None, t("sparse_", 0.9, 0.05)),
        Entry("zero_init", "zero_init"),
        Entry("scaled", {"name": "scaled", "base": "he_normal", "factor": 0.5}),
        Entry("depth_scaled", {"name": "depth_scaled", "base": "glorot_uniform", "depth": 16}),
        Entry("low_rank", {"name": "low_rank", "rank": 16, "base": "orthogonal"}),
        Entry("variance_scaling(out_in)", {"name": "variance_scaling", "scale": 2.0, "distribution": "normal",
                                           "layout": "out_in"}),
        Entry("lecun_uniform(groups=2)", {"name": "lecun_uniform", "groups": 2}),
        Entry("he_normal(einsum)", {"name": "he_normal", "einsum": "bd,dk->bk"}),
        Entry("torch_linear_bias", {"name": "torch_linear_bias", "fan_in": 96}),
    ]
