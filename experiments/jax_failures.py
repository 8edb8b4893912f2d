"""Measure where ``jax.nn.initializers`` (and Flax's defaults) miss their own targets.

Run:  .venv/bin/python experiments/jax_failures.py      (~20 s on 2 CPU cores)

Prints one line per claim of the README's section "Where jaxinit differs from
jax.nn.initializers and why" (README.md), with JAX's figure beside jaxinit's on the same key, so
the table can be re-measured on any JAX version. The test suite pins jaxinit's column only; JAX's
column is this script's to report (tests/test_low_precision.py, tests/test_protocol.py). Runs on
CPU with 4 fake devices (set below, before JAX starts) so the ``out_sharding`` rows have a mesh.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import flax  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxinit  # noqa: E402

KEY = jax.random.key(0)
N = 1 << 20  # 1 M samples for the low-precision rows
JNN = jax.nn.initializers


def as64(x) -> np.ndarray:
    return np.asarray(jnp.asarray(x, jnp.float32), np.float64)


def row(claim: str, jax_figure: str, ours: str) -> None:
    print(f"{claim:<58} | jax: {jax_figure:<34} | jaxinit: {ours}")


def attempt(fn):
    """fn() or the name of the exception it raised."""
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - we report whatever JAX raises
        return f"{type(err).__name__}"


def low_precision() -> None:
    shape = (1024, N // 1024)
    cases = {
        "he_normal": (JNN.he_normal(), jaxinit.he_normal()),
        "normal(1.0)": (JNN.normal(1.0), jaxinit.normal(1.0)),
        "truncated_normal(1.0)": (JNN.truncated_normal(1.0), jaxinit.truncated_normal(1.0)),
    }
    for dtype in (jnp.bfloat16, jnp.float16):
        for name, (theirs, ours) in cases.items():
            figures = []
            for init in (theirs, ours):
                w = as64(init(KEY, shape, dtype))
                z = np.abs(w) / math.sqrt(ours.variance(shape))
                figures.append(f"{np.unique(w).size} distinct, max|z| {z.max():.2f}")
            row(f"{np.dtype(dtype).name} {name}: 1M samples", *figures)

    e4m3, e5m2 = jnp.float8_e4m3fn, jnp.float8_e5m2
    for name, shape, theirs, ours in [
            ("glorot_uniform", (1024, 1024), JNN.glorot_uniform(), jaxinit.glorot_uniform()),
            ("glorot_uniform", (256, 256), JNN.glorot_uniform(), jaxinit.glorot_uniform()),
            ("he_normal", (256, 256), JNN.he_normal(), jaxinit.he_normal()),
            ("truncated_normal(0.05)", (256, 256), JNN.truncated_normal(0.05), jaxinit.truncated_normal(0.05))]:
        figures = []
        for init in (theirs, ours):
            w = as64(init(KEY, shape, e4m3))
            figures.append(f"zeros {np.mean(w == 0):.3f}, NaN {np.mean(np.isnan(w)):.3f}")
        row(f"float8_e4m3fn {name} {shape}: zero/NaN", *figures)
    ratios: dict[str, list[float]] = {"jax": [], "jaxinit": []}
    for name in ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"):
        for shape in ((256, 256), (1024, 1024), (3, 3, 64, 64)):
            target = jaxinit.get(name).variance(shape)
            for side, init in (("jax", getattr(JNN, name)()), ("jaxinit", jaxinit.get(name))):
                ratios[side].append(float(np.mean(as64(init(KEY, shape, e5m2)) ** 2)) / target)
    row("float8_e5m2 glorot/he/lecun x 3 shapes: E w^2 / target",
        *[f"{min(r):.3f} .. {max(r):.3f}" for r in ratios.values()])

    theirs = JNN.truncated_normal(0.02, lower=-100.0, upper=100.0)
    ours = jaxinit.truncated_normal(0.02, lower=-100.0, upper=100.0)
    figures = [f"std {as64(i(KEY, shape, jnp.bfloat16)).std():.4f}" for i in (theirs, ours)]
    row("bfloat16 truncated_normal(0.02, lower=-100, upper=100)", *figures)
    # JAX multiplies by the stddev after casting it to the target dtype.
    worst = max(abs(float(jnp.asarray(s, jnp.bfloat16)) / s - 1) for s in np.linspace(0.01, 0.02, 2001))
    row("bfloat16 stddev rounded before scaling: worst rel. error", f"{worst:.4f}", "0 (scale in float64)")


def complex_truncated() -> None:
    shape = (512, 512)
    theirs, ours = (JNN.variance_scaling(1.0, "fan_in", "truncated_normal"),
                    jaxinit.variance_scaling(1.0, "fan_in", "truncated_normal"))
    figures = []
    for init in (theirs, ours):
        w = np.asarray(init(KEY, shape, jnp.complex64))
        figures.append(f"E|z|^2 / target {np.mean(np.abs(w) ** 2) * shape[0]:.4f}")
    row("complex64 variance_scaling truncated_normal (512, 512)", *figures)


def fans() -> None:
    class EinsumNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Einsum((256, 8, 32), "bd,dhk->bhk", use_bias=False)(x)

    k = EinsumNet().init(KEY, jnp.ones((2, 256)))["params"]["Einsum_0"]["kernel"]
    ours = jaxinit.lecun_normal(einsum="bd,dhk->bhk")(KEY, (256, 8, 32))
    target = 1 / math.sqrt(256)
    row("nn.Einsum (256, 8, 32) 'bd,dhk->bhk': std x sqrt(256)",
        f"{float(np.std(k)) / target:.3f} (fan_in {jaxinit.compute_fans((256, 8, 32))[0]})",
        f"{float(np.std(ours)) / target:.3f} (fan_in 256)")

    dense = nn.DenseGeneral(256, batch_dims=(0,), use_bias=False)
    k = dense.init(KEY, jnp.ones((64, 4, 256)))["params"]["kernel"]
    ours = jaxinit.lecun_normal(batch_axis=0)(KEY, k.shape)  # on the real shape, e.g. through reinit
    row(f"nn.DenseGeneral(batch_dims=(0,)) kernel {k.shape}: std x 16",
        f"{float(np.std(k)) * 16:.3f}", f"{float(np.std(ours)) * 16:.3f}")

    conv = nn.Conv(10, (3, 3), feature_group_count=5, use_bias=False)
    k = conv.init(KEY, jnp.ones((1, 8, 8, 5)))["params"]["kernel"]
    jax_fans = jaxinit.compute_fans(k.shape)
    row(f"grouped conv {k.shape}, 5 groups: (fan_in, fan_out)", str(jax_fans),
        str(jaxinit.compute_fans(k.shape, groups=5)))
    row("OIHW kernel (32, 16, 3, 3) read as HWIO: (fan_in, fan_out)",
        str(jaxinit.compute_fans((32, 16, 3, 3))), str(jaxinit.compute_fans((32, 16, 3, 3), layout="OIHW")))


def orthogonal_bf16() -> None:
    got = attempt(lambda: JNN.orthogonal()(KEY, (64, 64), jnp.bfloat16).dtype.name)
    ours = attempt(lambda: jaxinit.get("orthogonal")(KEY, (64, 64), jnp.bfloat16).dtype.name)
    row("orthogonal (64, 64) bfloat16 on CPU", str(got), str(ours))


def sharding() -> None:
    mesh = jax.make_mesh((4,), ("x",))
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "x"))
    figures = [attempt(lambda i=init: str(i(KEY, (64, 64), jnp.float32, out_sharding=spec).sharding == spec))
               for init in (JNN.orthogonal(), jaxinit.get("orthogonal"))]
    row("orthogonal out_sharding honoured", *[f"sharding == requested: {f}" for f in figures])
    for name, theirs, ours in [("he_normal complex64", JNN.he_normal(), jaxinit.he_normal()),
                               ("he_uniform complex64", JNN.he_uniform(), jaxinit.he_uniform()),
                               ("he_normal float32", JNN.he_normal(), jaxinit.he_normal())]:
        dtype = jnp.complex64 if "complex" in name else jnp.float32
        for where in ("", " (no jax.set_mesh)"):
            figures = []
            for init in (theirs, ours):
                def draw(i=init, dtype=dtype):
                    return str(i(KEY, (64, 64), dtype, out_sharding=spec).sharding == spec)
                if where:
                    figures.append(attempt(draw))
                else:
                    with jax.set_mesh(mesh):
                        figures.append(attempt(draw))
            row(f"{name} out_sharding honoured{where}", *[f"sharding == requested: {f}" for f in figures])


def zero_size() -> None:
    for name in ("he_normal", "glorot_uniform", "lecun_normal"):
        for shape in ((0, 16), (16, 0), (3, 3, 0, 8)):
            figures = [str(attempt(lambda i=init, shape=shape: i(KEY, shape).shape))
                       for init in (getattr(JNN, name)(), getattr(jaxinit, name)())]
            row(f"{name} {shape}", *figures)


def main() -> None:
    print(f"jax {jax.__version__}, flax {flax.__version__}, {jax.devices()[0].platform} x{jax.device_count()}")
    low_precision()
    complex_truncated()
    fans()
    orthogonal_bf16()
    sharding()
    zero_size()


if __name__ == "__main__":
    main()
