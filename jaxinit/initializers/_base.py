"""The initializer protocol and the frozen base every catalog entry derives from.

An initializer is ``init(key, shape, dtype=None, out_sharding=None) -> jax.Array``: JAX's protocol,
so every entry drops into ``flax.linen.Dense(kernel_init=...)`` and ``flax.nnx.Linear(...)``.
Entries here are frozen dataclasses rather than closures: equal configurations are equal and hash
equal (one trace when passed as a static argument), the ``repr`` reads back as code, and
``to_dict()`` round-trips through :func:`jaxinit.get`.

The call path is shared (``BaseInitializer.__call__``): canonicalize shape and dtype, check the
shape and (for random entries) that ``key`` is one PRNG key as ``jax.random`` would, return an
empty array for zero-size shapes, let the subclass draw in a *wide* dtype (float32, or float64
when the target is float64/complex128), and cast once to the target dtype. Sampling wide is what
keeps bfloat16/float16/float8 weights on their intended distribution.

The draw and the cast run as one ``jax.jit`` program, compiled once per (initializer, shape,
dtype, key kind) and kept in a bounded LRU cache (:data:`EAGER_PROGRAMS`): an eager call is as
fast as a jitted one, and eager, ``jit`` and ``vmap`` draws agree bit for bit. A call repeating
one that passed the checks (the same initializer, shape tuple, dtype argument, kind of key and
flags) skips them: one dict lookup, then the program (measured on 2 CPU cores: 2-5 us of Python
per call instead of 4-28 us). Any other call, bad input included, is checked as above.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit import _prng
from jaxinit.errors import check_int


@runtime_checkable
class Initializer(Protocol):
    """``(key, shape, dtype=None, out_sharding=None) -> jax.Array``; for types and docs only."""

    def __call__(self, key: jax.Array, shape: Sequence[int], dtype: Any = None,
                 out_sharding: Any = None) -> jax.Array: ...


def default_float_dtype() -> np.dtype:
    """float32, or float64 when ``jax_enable_x64`` is on (JAX's ``dtype=None`` meaning)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def canonical_shape(shape: Any, where: object) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative Python ints, or a clear error."""
    if isinstance(shape, int | np.integer):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints; got {shape!r} ({where}).") from None
    out = []
    for d in dims:
        if type(d) is not int:  # Python ints skip the check (and formatting its message): eager calls
            d = check_int("shape entries", d, where=f"shape={dims!r}, {where}")
        if d < 0:
            raise ValueError(f"shape entries must be >= 0; got shape={dims!r} ({where}).")
        out.append(d)
    return tuple(out)


def is_complex(dtype: np.dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.complexfloating))


def wide_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype to sample in for target ``dtype``: float64/complex128 stay, the rest use 32 bits."""
    dtype = np.dtype(dtype)
    if dtype in (np.dtype(np.float64), np.dtype(np.complex128)):
        return np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    return np.dtype(np.complex64) if is_complex(dtype) else np.dtype(np.float32)


def real_dtype(dtype: np.dtype) -> np.dtype:
    """float32 for complex64, float64 for complex128; real dtypes unchanged."""
    return np.dtype(np.zeros((), dtype).real.dtype)


def dtype_name(dtype: Any) -> str | None:
    """A hashable, readable stand-in for a dtype field (``None`` stays ``None``)."""
    return None if dtype is None else np.dtype(dtype).name


def _plain(value: Any) -> Any:
    """A field value as plain data for ``to_dict`` (tuples -> lists, initializers -> dicts)."""
    if isinstance(value, BaseInitializer):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True, repr=False)
class BaseInitializer:
    """Shared call path, ``repr``, ``to_dict`` and validation for catalog entries.

    Subclasses set ``registry_name`` (the name :func:`jaxinit.get` knows them by), implement
    ``_sample(key, shape, dtype)`` (return an array in ``wide_dtype(dtype)``), ``variance(shape)``
    and, where it is not zero, ``mean(shape)``. ``_check_shape`` validates shapes at call time.
    """

    registry_name: ClassVar[str] = ""
    # Whether the output depends on ``key``; deterministic ones (zeros, identity) say False.
    random: ClassVar[bool] = True
    # Whether one draw's entries are independent and identically distributed; describe() judges
    # entries that are not (orthogonal, low_rank, sparse) on the spread over independent draws.
    iid: ClassVar[bool] = True
    # Whether complex target dtypes are supported.
    supports_complex: ClassVar[bool] = True
    # Fields the repr and to_dict always show, even at their defaults.
    always_shown: ClassVar[tuple[str, ...]] = ()
    # Whether an eager call runs one cached compiled program (see ``_eager_program``); entries
    # that only return a stored array (from_array) say False: compiling would embed the array.
    compile_eagerly: ClassVar[bool] = True

    # -- the protocol ---------------------------------------------------------------------
    def __call__(self, key: jax.Array, shape: Sequence[int], dtype: Any = None,
                 out_sharding: Any = None) -> jax.Array:
        # A repeated call (same initializer, shape, dtype and kind of key as a call that passed
        # every check below and ran its program) skips the checks: one dict lookup, then the
        # program. Anything else, including every bad input, takes the checked path.
        spelling = _call_spelling(self, key, shape, dtype) if out_sharding is None else None
        if spelling is not None:
            program = EAGER_PROGRAMS.lookup(spelling)
            if program is not None:
                return program(key) if self.random else program()
        # ``where=self``: the repr is only formed for an error message, not on every call.
        shape = canonical_shape(shape, where=self)
        dtype = self.resolve_dtype(dtype)
        # Shape and key are checked before the empty-array shortcut: a zero-size request is
        # refused exactly when the same request with nonzero sizes would be.
        self._check_shape(shape)
        if self.random:
            _prng.check_key(key, self)
        if math.prod(shape) == 0:
            return _shard(jnp.zeros(shape, dtype), out_sharding)
        found = _eager_program(self, key, shape, dtype)
        if found is None:  # a key jax.random must see itself, or nothing to key a cache on
            return _shard(self._draw(key, shape, dtype), out_sharding)
        signature, program = found
        out = program(key) if self.random else program()
        if spelling is not None:  # checked, traced and run: later calls spelled so go straight to it
            EAGER_PROGRAMS.remember(spelling, signature, program)
        return _shard(out, out_sharding)

    def _draw(self, key: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
        """The checked draw in the target dtype: the body of the program :func:`_eager_program`
        compiles, and the inline draw where there is none."""
        return self._sample(key, shape, dtype).astype(dtype)

    # -- common random numbers: which shared noise this draw is a scaled copy of ---------------
    def shared_noise(self, shape: Sequence[int], dtype: Any = None) -> tuple[SharedNoise, float] | None:
        r"""The raw noise this initializer's draw is a scaled copy of, and the factor; or None.

        Where it returns ``(noise, factor)``, for every key, bit for bit::

            init(key, shape, dtype) == (noise.draw(key, shape, dtype)
                                        * jnp.asarray(factor, wide_dtype(dtype))).astype(dtype)

        (``noise.draw`` returns the wide dtype; the factor is applied there and the result cast
        once, as the initializer itself does). Initializers that return equal ``noise`` for a
        shape draw *the same* numbers from one key up to their factors: the sweep draws that noise
        once per (seed, layer) for all of them and applies each factor to the product,
        ``f_k (x @ Z)`` (common random numbers). The default, None, means this draw is a scaled
        copy of no shared noise: the sweep draws it as is (:class:`InitializerNoise`, factor 1).

        Override it in an initializer whose draw is ``raw * factor`` for a noise other entries
        share (:class:`~jaxinit.initializers._random.UnitNoise`: zero-mean normal, truncated
        normal on (-2, 2), symmetric uniform) or for a unit-scale copy of itself
        (``InitializerNoise(uniform(1.0))`` for ``uniform(scale)``); the catalog tests check the
        identity above for every entry that does.
        """
        return None

    # -- draws that are a map of random bits (the sweep draws the bits once for several) --------
    def bits_shape(self, shape: Sequence[int], dtype: Any = None) -> tuple[int, ...] | None:
        """The shape of the ``jax.random.bits`` this draw maps to weights, or None if it is not
        such a map (the default; complex dtypes; empty shapes).

        Where it is not None, ``init(key, shape, dtype)`` equals
        ``init.from_bits(random_bits(key, init.bits_shape(shape, dtype), wide_dtype(dtype)), shape, dtype)``
        bit for bit (:func:`jaxinit.initializers._random.random_bits`): initializers drawn with one
        key then share one bit stream, which the sweep draws once.
        """
        shape = canonical_shape(shape, where=repr(self))
        dtype = self.resolve_dtype(dtype)
        if math.prod(shape) == 0 or is_complex(dtype):
            return None
        return self._bits_shape(shape)

    def from_bits(self, bits: jax.Array, shape: Sequence[int], dtype: Any = None) -> jax.Array:
        """The draw from random bits of shape ``bits_shape(shape, dtype)`` (see there)."""
        shape = canonical_shape(shape, where=repr(self))
        dtype = self.resolve_dtype(dtype)
        self._check_shape(shape)
        return self._sample_from_bits(bits, shape, dtype).astype(dtype)

    def apply_from_bits(self, bits: jax.Array, rows: jax.Array, shape: Sequence[int], dtype: Any = None, *,
                        transpose: bool = False) -> jax.Array:
        r"""``rows @ W`` (``rows @ W.T`` with ``transpose``) for the 2-D draw ``W = from_bits(bits, shape,
        dtype)``, computed the cheapest way the initializer knows, possibly without forming ``W``.

        ``rows``: ``(n, shape[0])`` (``(n, shape[1])`` with ``transpose``), in ``dtype``. Equal to
        the product with the formed matrix up to floating-point rounding (bit for bit for the
        default, a ``precision="highest"`` matmul). :class:`~jaxinit.initializers.Orthogonal`
        applies its Householder reflectors instead of forming :math:`Q` (LAPACK ``ormqr``).
        """
        shape = canonical_shape(shape, where=repr(self))
        dtype = self.resolve_dtype(dtype)
        if len(shape) != 2:
            raise ValueError(f"apply_from_bits needs a 2-D weight shape; got shape={shape} ({self!r}).")
        inner = shape[1] if transpose else shape[0]
        if rows.ndim != 2 or rows.shape[1] != inner:
            raise ValueError(f"rows must have shape (n, {inner}) for shape={shape}, transpose={transpose}; "
                             f"got {tuple(rows.shape)} ({self!r}).")
        self._check_shape(shape)
        return self._apply_from_bits(bits, rows, shape, dtype, transpose)

    def _apply_from_bits(self, bits, rows, shape, dtype, transpose):
        w = self.from_bits(bits, shape, dtype)
        return jnp.matmul(rows, w.T if transpose else w, precision=jax.lax.Precision.HIGHEST)

    def _bits_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        return None

    def _sample_from_bits(self, bits: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
        raise NotImplementedError(f"{self!r} is not a map of random bits.")

    def resolve_dtype(self, dtype: Any) -> np.dtype:
        """The call's dtype, else this initializer's own ``dtype`` field, else the default float."""
        if dtype is None:
            dtype = getattr(self, "dtype", None)
        dtype = default_float_dtype() if dtype is None else np.dtype(dtype)
        if is_complex(dtype):
            if not self.supports_complex:
                raise TypeError(f"{self!r} makes real weights; got complex dtype={dtype.name}.")
        elif not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{self!r} makes floating-point weights; got dtype={dtype.name}. "
                "Use a float (e.g. float32, bfloat16) or complex dtype."
            )
        return dtype

    # -- to be provided by subclasses -----------------------------------------------------
    def _check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` for shapes this initializer cannot fill (default: any shape).

        Called for zero-size shapes too (before the empty result is returned), so it must judge
        the shape's structure (rank, axes, divisibility) without dividing by a size."""

    def _sample(self, key: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
        raise NotImplementedError

    def variance(self, shape: Sequence[int]) -> float:
        """Target per-entry variance ``E|w - E w|^2`` for a weight of this ``shape``."""
        raise NotImplementedError

    def mean(self, shape: Sequence[int]) -> float:
        """Target per-entry mean (zero unless the distribution says otherwise)."""
        return 0.0

    # -- values, not closures -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., **fields}``, leaving out fields at their default; ``get`` reads it back."""
        out: dict[str, Any] = {"name": self.registry_name}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if (field.name not in self.always_shown and field.default is not dataclasses.MISSING
                    and _equal(value, field.default)):
                continue
            out[field.name] = _plain(value)
        return out

    def __repr__(self) -> str:
        spec = self.to_dict()
        name = spec.pop("name")
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in spec)
        return f"{name}({args})"


class SharedNoise:
    """Raw noise several initializers draw scaled copies of (see :meth:`BaseInitializer.shared_noise`).

    Subclasses are frozen dataclasses: equal noise is equal and hashes equal, which is how the
    sweep finds the initializers that share a draw. ``kind`` names it (``"raw:<distribution>"``
    for :class:`~jaxinit.initializers._random.UnitNoise`, ``"own"`` for an initializer's own draw).
    """

    kind: ClassVar[str] = ""

    def draw(self, key: jax.Array, shape: Sequence[int], dtype: Any) -> jax.Array:
        """The noise for a ``dtype`` weight of ``shape``, in ``wide_dtype(dtype)``, before any factor."""
        raise NotImplementedError

    def bits_shape(self, shape: Sequence[int], dtype: Any) -> tuple[int, ...] | None:
        """The shape of the random bits ``draw`` maps, or None (see :meth:`BaseInitializer.bits_shape`)."""
        raise NotImplementedError

    def from_bits(self, bits: jax.Array, shape: Sequence[int], dtype: Any) -> jax.Array:
        """``draw(key, shape, dtype)`` from ``random_bits(key, bits_shape(shape, dtype), wide_dtype(dtype))``."""
        raise NotImplementedError

    def apply_from_bits(self, bits: jax.Array, rows: jax.Array, shape: Sequence[int], dtype: Any,
                        transpose: bool) -> jax.Array:
        """``rows @ Z`` (``rows @ Z.T``) for ``Z = from_bits(bits, shape, dtype)``, in the wide dtype."""
        z = self.from_bits(bits, shape, dtype)
        return jnp.matmul(rows, z.T if transpose else z, precision=jax.lax.Precision.HIGHEST)


@dataclasses.dataclass(frozen=True)
class InitializerNoise(SharedNoise):
    """An initializer's own draw as noise: ``init(key, shape, wide_dtype(dtype))``, factor 1 for
    itself; a unit-scale entry (``uniform(1.0)``) is the noise of its scaled copies."""

    init: BaseInitializer
    kind: ClassVar[str] = "own"

    def draw(self, key, shape, dtype):
        return self.init(key, shape, wide_dtype(dtype))

    def bits_shape(self, shape, dtype):
        return self.init.bits_shape(shape, wide_dtype(dtype))

    def from_bits(self, bits, shape, dtype):
        return self.init.from_bits(bits, shape, wide_dtype(dtype))

    def apply_from_bits(self, bits, rows, shape, dtype, transpose):
        """The initializer's own :meth:`BaseInitializer.apply_from_bits` (orthogonal: reflectors)."""
        return self.init.apply_from_bits(bits, rows, shape, wide_dtype(dtype), transpose=transpose)


class ProgramCache:
    """A bounded least-recently-used map from eager-call signatures to compiled programs.

    Holds at most ``maxsize`` programs (settable at run time; shrinking evicts the least recently
    used, ``0`` turns the cache off). An evicted program is dropped with its ``jax.jit`` wrapper,
    so JAX's own per-function caches release its executable. Thread-safe.

    Beside each program it keeps the *spellings* of the calls that reached it after passing every
    check (:func:`_call_spelling`: the arguments as given, before canonicalization), at most
    ``SPELLINGS_PER_PROGRAM`` each: :meth:`lookup` answers a repeated call with one dict lookup.
    Spellings go with their program when it is evicted; one never seen checked is never answered.
    """

    SPELLINGS_PER_PROGRAM = 8

    def __init__(self, maxsize: int):
        self._entries: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        # spelling -> (signature, program); signature -> its spellings (dropped on eviction)
        self._spellings: dict[Any, tuple[Any, Any]] = {}
        self._spelled: dict[Any, list[Any]] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self.maxsize = maxsize

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        self._maxsize = check_int("maxsize", value, minimum=0, where="jaxinit eager program cache")
        with self._lock:
            self._evict()

    def _evict(self) -> None:
        while len(self._entries) > self._maxsize:
            signature, _ = self._entries.popitem(last=False)
            for spelling in self._spelled.pop(signature, ()):
                del self._spellings[spelling]

    def get(self, signature: Any, make: Any) -> Any:
        """The program cached for ``signature``, else ``make()`` (cached, evicting the oldest)."""
        with self._lock:
            program = self._entries.get(signature)
            if program is not None:
                self._entries.move_to_end(signature)
                self.hits += 1
                return program
            self.misses += 1
        program = make()
        with self._lock:
            self._entries[signature] = program
            self._entries.move_to_end(signature)
            self._evict()
        return program

    def lookup(self, spelling: Any) -> Any:
        """The program a call spelled ``spelling`` reached after its checks, else ``None``
        (never seen, evicted, or unhashable: the caller takes the checked path)."""
        try:
            found = self._spellings.get(spelling)
        except TypeError:  # an unhashable argument or field
            return None
        if found is None:
            return None
        signature, program = found
        with self._lock:
            try:
                self._entries.move_to_end(signature)
            except KeyError:  # evicted since (its spellings go with it)
                return None
            self.hits += 1
        return program

    def remember(self, spelling: Any, signature: Any, program: Any) -> None:
        """Record that a call spelled ``spelling`` passed its checks and ran ``program``, the one
        cached for ``signature`` (nothing if it was evicted meanwhile or the spelling is unhashable)."""
        with self._lock:
            if self._entries.get(signature) is not program:
                return
            spelled = self._spelled.setdefault(signature, [])
            if len(spelled) >= self.SPELLINGS_PER_PROGRAM:
                return
            try:
                if spelling in self._spellings:
                    return
                self._spellings[spelling] = (signature, program)
            except TypeError:
                return
            spelled.append(spelling)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._spellings.clear()
            self._spelled.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"ProgramCache(maxsize={self._maxsize}, size={len(self)}, hits={self.hits}, misses={self.misses})"


# One compiled program per (initializer, shape, dtype, key kind): 512 covers a large model's
# distinct layer shapes several times over; each entry is one small XLA executable.
EAGER_PROGRAMS = ProgramCache(512)


def _key_kind(key: Any) -> tuple[Any, ...] | None:
    """What the compiled draw depends on besides the key's bits: typed key and its implementation,
    or a raw Threefry key; ``None`` for raw keys ``jax.random`` must see itself (other default
    implementations, ``jax_legacy_prng_key`` warnings), which keep the op-by-op path."""
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        kind: tuple[Any, ...] = ("typed", str(jax.random.key_impl(key)))
    elif _prng._one_threefry_key(key):
        kind = ("raw", np.shape(key))
    else:
        return None
    return (*kind, jax.config.jax_threefry_partitionable, jax.config.jax_default_prng_impl)


def _call_spelling(init: BaseInitializer, key: Any, shape: Any, dtype: Any) -> tuple[Any, ...] | None:
    """A call's arguments as given, as a key of :meth:`ProgramCache.lookup`; ``None`` for calls
    that always take the checked path (shapes that are not tuples of Python ints, keys that are
    not arrays).

    It holds everything the checks and the signature of :func:`_eager_program` read: the
    initializer, the shape, the dtype *and its type* (``"float32"``, ``np.float32`` and
    ``jnp.float32`` are separate spellings, each checked once), the key's type, dtype (a typed
    key's dtype names its implementation) and shape, and the flags the checks and the key kind
    read (``jax_enable_x64``, the PRNG flags). Exact ``int`` entries only: ``(64.0, 64)`` and
    ``(True, 1)`` equal ``(64, 64)`` and ``(1, 1)`` as tuples but are refused by the checks.
    """
    if type(shape) is not tuple:
        return None
    for d in shape:
        if type(d) is not int:
            return None
    if init.random:
        try:
            key_spelling: Any = (type(key), key.dtype, key.shape)
        except AttributeError:
            return None
    else:  # the key is not read
        key_spelling = None
    config = jax.config
    return (init, shape, type(dtype), dtype, key_spelling, config.jax_enable_x64, config.jax_threefry_partitionable,
            config.jax_default_prng_impl, config.jax_legacy_prng_key, config.jax_enable_custom_prng)


def _eager_program(init: BaseInitializer, key: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """``(signature, program)``: the cached ``jax.jit`` of ``init._draw`` for this checked call,
    or ``None`` to draw inline.

    A call of a hashable initializer runs one ``jax.jit`` program per (initializer, shape, dtype,
    key kind) from :data:`EAGER_PROGRAMS`. Eagerly, the hash, the map of the bits and the cast
    then run as one compiled kernel, as under ``jit``, not op by op, and a repeated call neither
    retraces nor recompiles. Under a trace the same ``jax.jit`` is called: ``jit`` and
    ``eval_shape`` trace it as a nested call (XLA inlines it; its jaxpr is traced once per
    signature), ``vmap`` batches it, so an eager ``vmap`` over keys runs one compiled batched
    program too. Every mode therefore computes the same program and gets the same numbers bit for
    bit; op by op, the last bit of a draw can differ where XLA contracts a multiply-add inside a
    fused kernel. Output shardings are applied to the program's result by the caller.
    """
    if not init.compile_eagerly or EAGER_PROGRAMS.maxsize == 0:
        return None
    kind = _key_kind(key) if init.random else ()
    if kind is None:
        return None
    signature = (init, shape, dtype, kind, jax.config.jax_enable_x64)
    try:
        hash(signature)
    except TypeError:  # an initializer holding something unhashable: no cache key
        return None
    if init.random:
        return signature, EAGER_PROGRAMS.get(signature, lambda: jax.jit(lambda k: init._draw(k, shape, dtype)))
    return signature, EAGER_PROGRAMS.get(signature, lambda: jax.jit(lambda: init._draw(None, shape, dtype)))


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays compare elementwise
        return False


def _shard(x: jax.Array, out_sharding: Any) -> jax.Array:
    """Place ``x`` on ``out_sharding`` (a Sharding, or a PartitionSpec of the context mesh).

    Meshes with Explicit axes (``jax.make_mesh``'s default) take ``device_put``, which reshards
    eagerly and under ``jit``; all-Auto meshes take ``with_sharding_constraint``. A
    PartitionSpec needs a mesh set with ``jax.set_mesh``, as in JAX.
    """
    if out_sharding is None:
        return x
    if isinstance(out_sharding, jax.sharding.PartitionSpec):
        mesh = jax.sharding.get_abstract_mesh()
        if mesh.empty:
            raise ValueError(
                f"out_sharding={out_sharding} is a PartitionSpec but no mesh is set; wrap the call in "
                "`with jax.set_mesh(mesh):` or pass a NamedSharding."
            )
    elif isinstance(out_sharding, jax.sharding.NamedSharding):
        mesh = out_sharding.mesh
    else:
        mesh = None
    if mesh is not None and any(t != jax.sharding.AxisType.Auto for t in mesh.axis_types):
        return jax.device_put(x, out_sharding)
    if mesh is not None or isinstance(x, jax.core.Tracer):
        return jax.lax.with_sharding_constraint(x, out_sharding)
    return jax.device_put(x, out_sharding)


def as_axes(arg: str, axes: int | Sequence[int]) -> tuple[int, ...]:
    """An axis or sequence of axes as a tuple of ints (TOML lists become hashable tuples)."""
    if isinstance(axes, int | np.integer) and not isinstance(axes, bool):
        return (int(axes),)
    try:
        return tuple(check_int(arg, a) for a in axes)
    except TypeError:
        raise TypeError(f"{arg} must be an int or a sequence of ints; got {axes!r}.") from None
