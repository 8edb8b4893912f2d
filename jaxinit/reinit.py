"""Re-initialize an existing model's parameters by path: JAX's ``module.apply(init_fn)``.

``reinit(params, rules, key)`` walks any pytree (flax.linen param dicts, ``nnx.state(model)``,
equinox modules), joins each leaf's path with ``/`` (``"params/Dense_0/kernel"``,
``"layers/0/kernel"``), and gives the leaves that a rule's regular expression matches
(``re.search``) fresh weights:

.. code-block:: text

    new_leaf = init(fold_in(key, stable_hash(path)), leaf.shape, leaf.dtype)

``stable_hash`` is a BLAKE2 digest of the path, not Python's salted ``hash``, so the same key
and path give the same weights in every process, and a leaf's weights do not depend on which
other leaves exist or in which order they are visited.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxinit.initializers._base import BaseInitializer
from jaxinit.initializers._registry import get

__all__ = ["path_key", "path_string", "reinit", "stable_hash"]

Rules = Mapping[str, Any] | Sequence[tuple[str, Any]]


def stable_hash(path: str) -> int:
    """A 32-bit hash of ``path`` that is the same in every process (BLAKE2b, not ``hash``).

    Example:
      >>> stable_hash("params/Dense_0/kernel")
      2722157177
    """
    return int.from_bytes(hashlib.blake2b(path.encode("utf-8"), digest_size=4).digest(), "little")


def path_key(key: jax.Array, path: str) -> jax.Array:
    """The key :func:`reinit` gives the leaf at ``path``: ``fold_in(key, stable_hash(path))``."""
    return jax.random.fold_in(key, np.uint32(stable_hash(path)))


def _entry(k: Any) -> str:
    for attr in ("key", "name", "idx"):  # DictKey / FlattenedIndexKey, GetAttrKey, SequenceKey
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def path_string(path: Sequence[Any]) -> str:
    """A ``jax.tree_util`` key path as ``"a/b/0/c"`` (dict keys, attribute names and indices).

    Example:
      >>> import jax
      >>> leaves = jax.tree_util.tree_flatten_with_path({"params": {"Dense_0": {"kernel": 1}}})[0]
      >>> path_string(leaves[0][0])
      'params/Dense_0/kernel'
    """
    return "/".join(_entry(k) for k in path)


def _flax_boxes() -> tuple[type, type] | None:
    """Flax's ``(nnx.Variable, meta.AxisMetadata)``, or None when Flax was never imported (then no
    tree can hold them, and a sweep-only process need not pay for importing Flax)."""
    if "flax" not in sys.modules:
        return None
    from flax import nnx
    from flax.core import meta

    return nnx.Variable, meta.AxisMetadata


def _is_box(x: Any) -> bool:
    boxes = _flax_boxes()
    return boxes is not None and isinstance(x, boxes)


def _unbox(x: Any) -> Any:
    boxes = _flax_boxes()
    if boxes is None:
        return x
    if isinstance(x, boxes[0]):
        return x.get_value()
    if isinstance(x, boxes[1]):
        return x.unbox()
    return x


def _rebox(box: Any, value: Any) -> Any:
    boxes = _flax_boxes()
    if boxes is None:
        return value
    if isinstance(box, boxes[0]):
        return box.replace(value)
    if isinstance(box, boxes[1]):
        return box.replace_boxed(value)
    return value


def _as_init(pattern: str, spec: Any) -> Callable[..., jax.Array] | None:
    if spec is None or isinstance(spec, BaseInitializer):
        return spec
    if isinstance(spec, str | Mapping):
        return get(spec)
    if callable(spec):
        return spec
    raise TypeError(
        f"rules[{pattern!r}] must be an initializer, a registry name, a dict spec or None; got {spec!r}."
    )


def _compile_rules(rules: Rules) -> list[tuple[str, re.Pattern, Any]]:
    pairs = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
    if not pairs:
        raise ValueError("rules must map at least one path pattern to an initializer; got none.")
    out = []
    for item in pairs:
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"rules must be a dict or a list of (pattern, initializer) pairs; got entry {item!r}.")
        pattern, spec = item
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"rule pattern {pattern!r} is not a valid regular expression: {err}.") from None
        out.append((pattern, regex, _as_init(pattern, spec)))
    return out


def _sharding_of(leaf: Any) -> Any:
    """The leaf's NamedSharding when it is spread over several devices, else ``None``."""
    if isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer):
        sharding = leaf.sharding
        if isinstance(sharding, jax.sharding.NamedSharding) and len(sharding.device_set) > 1:
            return sharding
    return None


def _draw(init, pattern: str, path: str, key: jax.Array, leaf: Any) -> jax.Array:
    sharding = _sharding_of(leaf)
    leaf_key = path_key(key, path)
    try:
        if isinstance(init, BaseInitializer):
            return init(leaf_key, leaf.shape, leaf.dtype, out_sharding=sharding)
        new = init(leaf_key, leaf.shape, leaf.dtype)
        return new if sharding is None else jax.device_put(new, sharding)
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"rule {pattern!r} matched {path!r} (shape={tuple(leaf.shape)}, dtype={leaf.dtype}), "
            f"which {init!r} cannot fill: {err} Narrow the pattern, or pass nnx.state(model, nnx.Param) "
            "to leave out non-parameter state."
        ) from err


def reinit(params: Any, rules: Rules, key: jax.Array) -> Any:
    r"""Return ``params`` with every leaf whose path a rule matches drawn afresh from that rule.

    For each array leaf, its path is joined with ``/`` (:func:`path_string`) and the rules are
    tried **in order**; the **first** whose pattern ``re.search``-es the path wins and the leaf
    becomes ``init(fold_in(key, stable_hash(path)), leaf.shape, leaf.dtype)``. A rule whose value
    is ``None`` keeps the leaves it matches (put it first to exempt e.g. an output head).
    Unmatched leaves are returned untouched (the same objects). Leaves boxed in
    ``nnx.Variable``\ s or Flax ``AxisMetadata`` (``nn.with_partitioning``) are re-boxed with their
    metadata, and arrays sharded over several devices keep their ``NamedSharding``.

    Flax linen: ``params = reinit(variables, {"kernel$": jaxinit.he_normal()}, key)``.
    Flax nnx: ``state = reinit(nnx.state(model, nnx.Param), rules, key)`` then
    ``nnx.update(model, state)`` (paths read ``"layers/0/kernel"``). Equinox modules are pytrees
    too: paths are attribute names (``"layers/0/weight"``, stored ``(out, in)``: use
    ``layout="out_in"``).

    Args:
      params: any pytree of arrays.
      rules: ``{pattern: initializer}`` (insertion order is the order tried) or a sequence of
        ``(pattern, initializer)`` pairs. Initializers may be jaxinit values, registry names or
        dict specs, any ``(key, shape, dtype)`` callable, or ``None`` (keep).
      key: a PRNG key (typed or raw).

    Returns:
      A pytree of the same structure.

    Raises:
      ValueError: if a pattern matches no array leaf (the message names it and lists the paths),
        or a matched leaf cannot be filled by its initializer (e.g. an integer counter).

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn
      >>> from jaxinit import orthogonal, zeros
      >>> variables = nn.Dense(4).init(jax.random.key(0), jnp.ones((1, 4)))
      >>> new = reinit(variables, {"kernel$": orthogonal(), "bias$": zeros}, jax.random.key(1))
      >>> w = new["params"]["kernel"]
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(4), atol=1e-5))
      True
    """
    compiled = _compile_rules(rules)
    flat, treedef = jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_box)
    hits = dict.fromkeys((pattern for pattern, _, _ in compiled), 0)
    paths, out = [], []  # hits: leaves each rule won
    for keypath, leaf in flat:
        value = _unbox(leaf)
        if not (hasattr(value, "shape") and hasattr(value, "dtype")):
            out.append(leaf)
            continue
        path = path_string(keypath)
        paths.append(path)
        for pattern, regex, init in compiled:
            if regex.search(path):
                hits[pattern] += 1
                if init is not None:
                    leaf = _rebox(leaf, _draw(init, pattern, path, key, value))
                break
        out.append(leaf)
    _check_every_rule_applied(compiled, hits, paths)
    return jax.tree_util.tree_unflatten(treedef, out)


def _check_every_rule_applied(compiled, hits: dict[str, int], paths: list[str]) -> None:
    for pattern, regex, _ in compiled:
        if hits[pattern]:
            continue
        shadowed = [p for p in paths if regex.search(p)]
        if shadowed:
            raise ValueError(
                f"rule {pattern!r} never applies: every path it matches ({shadowed[0]!r}, ...) is taken "
                "by an earlier rule (the first matching rule wins). Reorder or narrow the rules."
            )
        shown = ", ".join(repr(p) for p in paths[:20]) + (", ..." if len(paths) > 20 else "")
        raise ValueError(f"rule {pattern!r} matches no array leaf; the paths are: {shown or 'none'}.")
