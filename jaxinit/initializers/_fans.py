"""Fan computation: the one place in the package that turns a weight shape into (fan_in, fan_out).

Axes are JAX's by default: ``in_axis`` and ``out_axis`` hold the input and output features,
``batch_axis`` holds independent matrices (left out of both fans), and every other axis is the
receptive field of a convolution, which multiplies both fans. A ``(3, 3, 16, 32)`` HWIO kernel
has fans (144, 288).

Three options describe kernels that JAX's axes alone get wrong:

- ``layout`` names where the features live: ``"in_out"`` (JAX/Flax, the default), ``"out_in"``
  (PyTorch ``Linear``/``Conv`` weights), or letters such as ``"HWIO"``, ``"OIHW"``, ``"IOHW"``.
- ``groups`` for grouped and depthwise convolutions: each unit connects to one group only.
- ``einsum`` reads the axes off an equation such as ``"bd,dhk->bhk"`` (``nn.Einsum``), the
  kernel being its second operand.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Sequence

from jaxinit.errors import check_choice, check_int, did_you_mean

# How a variance-scaling initializer turns the two fans into its denominator.
FAN_MODES: dict[str, Callable[[float, float], float]] = {
    "fan_in": lambda fan_in, fan_out: fan_in,
    "fan_out": lambda fan_in, fan_out: fan_out,
    "fan_avg": lambda fan_in, fan_out: (fan_in + fan_out) / 2,
    "fan_geo_avg": lambda fan_in, fan_out: math.sqrt(fan_in * fan_out),
}

DEFAULT_IN, DEFAULT_OUT, DEFAULT_BATCH = (-2,), (-1,), ()

# Named layouts any caller may pass; other strings of I, O and distinct D/H/W letters also work.
LAYOUTS = (
    "in_out", "out_in",                      # any rank: JAX/Flax (..., in, out); PyTorch (out, in, ...)
    "IO", "OI",                              # dense
    "WIO", "OIW", "IOW",                     # 1-d convolution: Flax, PyTorch Conv, PyTorch ConvTranspose
    "HWIO", "OIHW", "IOHW",                  # 2-d
    "DHWIO", "OIDHW", "IODHW",               # 3-d
)
_SPATIAL = "DHW"


@dataclasses.dataclass(frozen=True)
class _Axes:
    """Where the features are, for one rank; ``grouped`` is the fan that ``groups`` divides."""

    ins: tuple[int, ...]
    outs: tuple[int, ...]
    batch: tuple[int, ...]
    grouped: str = "fan_out"


def _as_tuple(axes: int | Sequence[int]) -> tuple[int, ...]:
    return (int(axes),) if isinstance(axes, numbers.Integral) else tuple(int(a) for a in axes)


def check_layout(layout: object) -> str:
    """Return ``layout`` if it names a layout, else raise ``ValueError`` with the closest name."""
    if isinstance(layout, str) and (layout in LAYOUTS or _letters_ok(layout)):
        return layout
    hint = did_you_mean(layout, LAYOUTS)
    if not hint and isinstance(layout, str) and _letters_ok(layout.upper()):
        hint = f" Did you mean {layout.upper()!r}?"
    raise ValueError(
        f"layout must be one of {list(LAYOUTS)} (or another order of the letters I, O and D/H/W); "
        f"got {layout!r}.{hint}"
    )


def _letters_ok(layout: str) -> bool:
    rest = layout.replace("I", "", 1).replace("O", "", 1)
    return (len(rest) == len(layout) - 2 and all(c in _SPATIAL for c in rest)
            and len(set(rest)) == len(rest))


def _layout_axes(layout: str, shape: tuple[int, ...]) -> _Axes:
    ndim = len(shape)
    if layout == "in_out":
        return _Axes(DEFAULT_IN, DEFAULT_OUT, DEFAULT_BATCH)
    if layout == "out_in":
        return _Axes((1,), (0,), ())
    if len(layout) != ndim:
        raise ValueError(
            f"layout={layout!r} describes {len(layout)}-D kernels; got shape={shape} ({ndim} dims). "
            "Use 'in_out' or 'out_in' for any rank."
        )
    # PyTorch ConvTranspose weights (in, out / groups, ...) store one group of the *output*
    # channels, so there ``groups`` divides fan_in; every other layout stores in / groups.
    grouped = "fan_in" if layout.startswith("IO") and ndim > 2 else "fan_out"
    return _Axes((layout.index("I"),), (layout.index("O"),), (), grouped)


def parse_einsum(einsum: str) -> tuple[str, str, str]:
    """Split ``"input,kernel->output"`` into its three subscripts, checking what fans need.

    Raises ``ValueError`` unless the equation is explicit (``->``), has exactly two operands, the
    kernel (second operand) has distinct letters and no ellipsis, and every kernel letter appears in
    the input or the output.
    """
    if not isinstance(einsum, str):
        raise TypeError(f"einsum must be a string such as 'bd,dhk->bhk'; got {einsum!r}.")
    return _parse_einsum(einsum)


@functools.lru_cache(maxsize=256)
def _parse_einsum(einsum: str) -> tuple[str, str, str]:
    spec = einsum.replace(" ", "")
    if spec.count("->") != 1 or spec.count(",") != 1:
        raise ValueError(
            f"einsum must be an explicit two-operand equation 'input,kernel->output' "
            f"(e.g. 'bd,dhk->bhk'); got einsum={einsum!r}."
        )
    operands, output = spec.split("->")
    inputs, kernel = operands.split(",")
    if "." in kernel or not kernel.isalpha():
        raise ValueError(
            f"the kernel subscripts (second operand) must be letters, one per axis; got {kernel!r} "
            f"in einsum={einsum!r}."
        )
    if len(set(kernel)) != len(kernel):
        raise ValueError(f"the kernel subscripts {kernel!r} repeat a letter (einsum={einsum!r}).")
    for part, name in ((inputs, "input"), (output, "output")):
        if not part.replace("...", "").isalpha() and part.replace("...", ""):
            raise ValueError(f"the {name} subscripts {part!r} must be letters or '...' (einsum={einsum!r}).")
    for letter in kernel:
        if letter not in inputs and letter not in output:
            raise ValueError(
                f"kernel axis {letter!r} of einsum={einsum!r} appears in neither the input nor the "
                "output, so it is summed over inside the kernel; fold it into another axis."
            )
    return inputs, kernel, output


def _einsum_axes(einsum: str, shape: tuple[int, ...]) -> _Axes:
    inputs, kernel, output = parse_einsum(einsum)
    if len(kernel) != len(shape):
        raise ValueError(
            f"einsum={einsum!r} gives the kernel {len(kernel)} axes ({kernel!r}); "
            f"got shape={shape} ({len(shape)} dims)."
        )
    ins = tuple(i for i, c in enumerate(kernel) if c in inputs and c not in output)
    outs = tuple(i for i, c in enumerate(kernel) if c not in inputs and c in output)
    batch = tuple(i for i, c in enumerate(kernel) if c in inputs and c in output)
    return _Axes(ins, outs, batch)


def _resolve(name: str, axes: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    ndim = len(shape)
    out = []
    for axis in axes:
        if not -ndim <= axis < ndim:
            raise ValueError(
                f"{name}={axis} is out of range for shape={shape} ({ndim} dims); "
                f"allowed: {-ndim}..{ndim - 1}."
            )
        out.append(axis % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={axes} repeats an axis for shape={shape}.")
    return tuple(out)


def check_fan_options(in_axis=DEFAULT_IN, out_axis=DEFAULT_OUT, batch_axis=DEFAULT_BATCH,
                      layout: str = "in_out", groups: int = 1, einsum: str | None = None) -> None:
    """Validate a combination of fan options without a shape (initializers call it when built)."""
    check_layout(layout)
    check_int("groups", groups, minimum=1)
    axes_given = (_as_tuple(in_axis) != DEFAULT_IN or _as_tuple(out_axis) != DEFAULT_OUT)
    if einsum is not None:
        parse_einsum(einsum)
        if axes_given or _as_tuple(batch_axis) != DEFAULT_BATCH or layout != "in_out":
            raise ValueError(
                f"einsum={einsum!r} sets every axis; got in_axis={in_axis!r}, out_axis={out_axis!r}, "
                f"batch_axis={batch_axis!r}, layout={layout!r} too. Give the einsum alone."
            )
        if groups != 1:
            raise ValueError(f"groups applies to convolution kernels; got groups={groups} with einsum={einsum!r}.")
    elif layout != "in_out":
        if axes_given:
            raise ValueError(
                f"layout={layout!r} sets in_axis and out_axis; got in_axis={in_axis!r}, out_axis={out_axis!r} "
                "too. Give the layout alone, or the axes with layout='in_out'."
            )
        if layout != "out_in" and _as_tuple(batch_axis) != DEFAULT_BATCH:
            raise ValueError(
                f"layout={layout!r} names every axis, so there is no room for batch_axis={batch_axis!r}; "
                "use layout='in_out' with explicit axes."
            )


def compute_fans(
    shape: Sequence[int],
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
    *,
    layout: str = "in_out",
    groups: int = 1,
    einsum: str | None = None,
) -> tuple[int, int]:
    r"""Return ``(fan_in, fan_out)`` of a weight of this ``shape``.

    .. math:: \mathrm{fan\_in} = r \prod_{a \in \mathrm{in}} n_a, \qquad
              \mathrm{fan\_out} = r \prod_{a \in \mathrm{out}} n_a,

    where the receptive field :math:`r` is the product of the axes in none of the in, out and
    batch groups; with ``groups = g`` the fan over the axis that holds all channels is divided by
    :math:`g` (each unit connects to one group).

    Args:
      shape: the weight's shape, at least 2-D.
      in_axis: axis or axes holding the input features (default ``-2``, Flax's layout).
      out_axis: axis or axes holding the output features (default ``-1``).
      batch_axis: axes of independent matrices, left out of both fans (default none).
      layout: where the features live instead of ``in_axis``/``out_axis``: ``"in_out"`` (the
        axes above), ``"out_in"`` (PyTorch ``Linear``/``Conv`` weights ``(out, in, *window)``, any
        rank), or a letter string with one ``I``, one ``O`` and spatial ``D``/``H``/``W`` letters:
        ``"HWIO"`` (Flax conv), ``"OIHW"`` (PyTorch conv), ``"IOHW"`` (PyTorch ConvTranspose),
        their 1-d/3-d forms, ``"IO"``, ``"OI"``.
      groups: feature groups of a grouped (``feature_group_count``) or depthwise convolution.
        The kernel stores the input channels of one group, so fan_in is read as is and
        fan_out is divided by ``groups``; PyTorch ConvTranspose weights (``"IO.."`` layouts with a
        window) store one group's output channels instead, and there fan_in is divided.
      einsum: an equation ``"input,kernel->output"`` whose second operand is the kernel (as in
        ``flax.linen.Einsum``): kernel letters contracted with the input are fan-in axes, letters
        that reach only the output are fan-out axes, and letters in input, kernel *and* output
        (e.g. attention heads in ``"bhd,hdk->bhk"``) index independent matrices (batch axes).

    Returns:
      ``(fan_in, fan_out)`` as Python ints.

    Raises:
      ValueError: if ``shape`` has fewer than 2 dims, an axis is out of range or in two groups,
        the layout or einsum does not fit the shape, ``groups`` does not divide the channels,
        or a fan is zero.

    Example:
      >>> compute_fans((3, 3, 16, 32))
      (144, 288)
      >>> compute_fans((64, 256, 128), batch_axis=0)
      (256, 128)
      >>> compute_fans((32, 16, 3, 3), layout="OIHW")
      (144, 288)
      >>> compute_fans((3, 3, 1, 10), groups=5)
      (9, 18)
      >>> compute_fans((256, 8, 32), einsum="bd,dhk->bhk")
      (256, 256)
    """
    fan_in, fan_out = fans_allowing_zero(shape, in_axis, out_axis, batch_axis, layout=layout, groups=groups,
                                         einsum=einsum)
    if fan_in == 0 or fan_out == 0:
        raise ValueError(f"shape={tuple(shape)} has a zero fan (fan_in={fan_in}, fan_out={fan_out}).")
    return fan_in, fan_out


def fans_allowing_zero(shape: Sequence[int], in_axis=DEFAULT_IN, out_axis=DEFAULT_OUT, batch_axis=DEFAULT_BATCH,
                       *, layout: str = "in_out", groups: int = 1, einsum: str | None = None) -> tuple[int, int]:
    """:func:`compute_fans` without its last check: a zero fan (a zero-size shape) is returned, not
    refused. Every other check (rank, axes, layout, einsum, groups) is the same, so a zero-size
    request is validated as a nonzero one would be."""
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2 and einsum is None:
        raise ValueError(
            f"fan-based initializers need a weight shape with at least 2 dims; got shape={shape}. "
            "Biases and other 1-D parameters take a constant or a fixed-stddev initializer."
        )
    check_fan_options(in_axis, out_axis, batch_axis, layout, groups, einsum)
    if einsum is not None:
        axes = _einsum_axes(einsum, shape)
    elif layout == "in_out":
        axes = _Axes(_as_tuple(in_axis), _as_tuple(out_axis), _as_tuple(batch_axis))
    else:
        axes = dataclasses.replace(_layout_axes(layout, shape), batch=_as_tuple(batch_axis))
    ins = _resolve("in_axis", axes.ins, shape)
    outs = _resolve("out_axis", axes.outs, shape)
    batch = _resolve("batch_axis", axes.batch, shape)
    sets = {"in_axis": set(ins), "out_axis": set(outs), "batch_axis": set(batch)}
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if sets[a] & sets[b]:
                raise ValueError(
                    f"{a} and {b} overlap on axis {sorted(sets[a] & sets[b])} for shape={shape}; "
                    "each axis belongs to at most one group."
                )
    used = set(ins) | set(outs) | set(batch)
    receptive = math.prod(d for axis, d in enumerate(shape) if axis not in used)
    n_in, n_out = math.prod(shape[a] for a in ins), math.prod(shape[a] for a in outs)
    if groups > 1:
        full = n_out if axes.grouped == "fan_out" else n_in
        if full % groups:
            side = "output" if axes.grouped == "fan_out" else "input"
            raise ValueError(
                f"groups={groups} must divide the {side} channels stored in full ({full}) of "
                f"shape={shape} (layout={layout!r})."
            )
        n_out, n_in = (n_out // groups, n_in) if axes.grouped == "fan_out" else (n_out, n_in // groups)
    return receptive * n_in, receptive * n_out


def fan_denominator(mode: str, shape: Sequence[int], in_axis=-2, out_axis=-1, batch_axis=(), *,
                    layout: str = "in_out", groups: int = 1, einsum: str | None = None) -> float:
    """The ``n`` of ``Var[W] = scale / n`` for a fan ``mode`` (one of ``FAN_MODES``)."""
    check_choice("mode", mode, FAN_MODES)
    fans = compute_fans(shape, in_axis, out_axis, batch_axis, layout=layout, groups=groups, einsum=einsum)
    return FAN_MODES[mode](*fans)
