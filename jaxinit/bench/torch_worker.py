"""Baseline (c): the loop a PyTorch user writes for the benchmark's work.

``python -P torch_worker.py SPEC_JSON`` (as the harness runs it) or ``python -m
jaxinit.bench.torch_worker SPEC_JSON``. SPEC: ``inits``, ``seeds``, ``depth``, ``width``, ``batch``,
``gradients`` and ``threads`` (``torch.set_num_threads``, or null). Per (initializer, seed):
``torch.nn.init`` on the ``nn.Linear`` layers, then a forward pass collecting the per-layer ``q`` (and,
with gradients, a readout, an MSE loss and the weights' gradient norms). Prints one
``BENCH_RESULT {json}`` line.

A PyTorch user's program: it never imports JAX or jaxinit.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

T0 = time.perf_counter()  # the clock starts with the program, before torch is imported

RESULT_MARK = "BENCH_RESULT "


def initializers(torch):
    """jaxinit's (and jax.nn.initializers') names -> ``torch.nn.init``'s namesakes."""
    init = torch.nn.init
    return {
        "he_normal": lambda w: init.kaiming_normal_(w, nonlinearity="relu"),
        "he_uniform": lambda w: init.kaiming_uniform_(w, nonlinearity="relu"),
        "glorot_normal": init.xavier_normal_,
        "glorot_uniform": init.xavier_uniform_,
        "lecun_normal": lambda w: init.kaiming_normal_(w, nonlinearity="linear"),
        "lecun_uniform": lambda w: init.kaiming_uniform_(w, nonlinearity="linear"),
        "orthogonal": init.orthogonal_,
    }


def main(argv):
    import torch  # here, so that importing this module (pytest's doctest collection) needs no torch

    t1 = time.perf_counter()
    spec = json.loads(argv[1])
    inits = initializers(torch)
    depth, width, batch, seeds, grads = spec["depth"], spec["width"], spec["batch"], spec["seeds"], spec["gradients"]
    torch.set_float32_matmul_precision("highest")
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    layers = torch.nn.ModuleList([torch.nn.Linear(width, width) for _ in range(depth)]).to(device)
    readout = torch.nn.Linear(width, 10).to(device) if grads else None

    t = time.perf_counter()
    q_first, q_last = {}, {}
    for name in spec["inits"]:
        reinit = inits[name]
        firsts, finals = [], []
        for seed in range(seeds):
            torch.manual_seed(seed)
            with torch.no_grad():
                for linear in layers:
                    reinit(linear.weight)
                    linear.bias.zero_()
                if readout is not None:
                    reinit(readout.weight)
                    readout.bias.zero_()
            x = torch.randn(batch, width, device=device)
            with torch.set_grad_enabled(grads):
                qs = []
                for linear in layers:
                    h = linear(x)
                    qs.append((h * h).mean())
                    x = torch.relu(h)
                q = torch.stack(qs)
                if readout is not None:
                    y = readout(x)
                    loss = ((y - torch.randn_like(y)) ** 2).mean()
                    gradients = torch.autograd.grad(loss, [linear.weight for linear in layers])
                    torch.stack([g.norm() for g in gradients]).cpu().numpy()
            q = q.detach().cpu().numpy()
            firsts.append(float(q[0]))
            finals.append(float(q[-1]))
        q_first[name], q_last[name] = statistics.median(firsts), statistics.median(finals)
    if device.type == "cuda":
        torch.cuda.synchronize()
    run_s = time.perf_counter() - t
    result = {"import_s": t1 - T0, "compile_s": 0.0, "run_s": run_s, "q_first": q_first, "q_last": q_last,
              "backend": device.type, "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
              "total_s": time.perf_counter() - T0}
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
