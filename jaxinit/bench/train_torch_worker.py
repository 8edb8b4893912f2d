"""Training baseline (c): the loop a PyTorch user writes -- ``torch.nn.init`` + ``torch.optim.SGD`` per member.

``python -P train_torch_worker.py SPEC_JSON`` (as the harness runs it). SPEC: the work
(:meth:`jaxinit.bench.train_work.TrainWork.spec`), ``data`` (the ``.npz`` path) and ``threads``
(``torch.set_num_threads``; null: torch's default, one thread per physical core). An ``nn.Sequential``
of ``nn.Linear`` + ``nn.ReLU`` and a readout; per member (initializer, seed): ``torch.manual_seed(seed)``,
the ``torch.nn.init`` namesake of the initializer on every weight (biases zero,
:func:`jaxinit.bench.torch_worker.initializers`), a fresh ``SGD(lr, momentum)``, then per minibatch
``zero_grad``, ``cross_entropy``, ``backward``, ``step``, and at step 0 and every ``eval_every`` steps
an evaluation under ``no_grad`` (loss and accuracy on the training and test sets). Prints one
``BENCH_RESULT {json}`` line.

A PyTorch user's program: it never imports JAX or jaxinit.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # the clock starts with the program, before torch is imported

import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

# train_shared by file path: run as ``python -P``, this folder is no package to import from
_SHARED = importlib.util.spec_from_file_location("_jaxinit_bench_train_shared",
                                                 Path(__file__).with_name("train_shared.py"))
shared = importlib.util.module_from_spec(_SHARED)
_SHARED.loader.exec_module(shared)


class Trainer:
    """One work's model, data and loop in PyTorch (``torch`` passed in: imported by the caller)."""

    def __init__(self, torch, spec, data, threads=None):
        self.torch, self.spec = torch, spec
        if threads:
            torch.set_num_threads(int(threads))
        nn = torch.nn
        self.x_train, self.y_train, self.x_test, self.y_test = (
            torch.from_numpy(a).long() if a.dtype.kind in "iu" else torch.from_numpy(a) for a in data)
        in_dim, out_dim = shared.io_dims(data)
        dims = [in_dim] + [spec["width"]] * spec["depth"]
        layers = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.model = nn.Sequential(*layers, nn.Linear(dims[-1], out_dim))
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        self.names = shared.EVAL_NAMES

    def init_member(self, reinit, seed):
        """``torch.manual_seed(seed)``, then ``reinit`` on every weight and zero biases."""
        self.torch.manual_seed(seed)
        with self.torch.no_grad():
            for linear in self.linears:
                reinit(linear.weight)
                linear.bias.zero_()

    def set_layers(self, layers):
        """The weights of ``[(kernel (fan_in, fan_out), bias), ...]`` (a kernel is a weight transposed)."""
        with self.torch.no_grad():
            for linear, (w, b) in zip(self.linears, layers, strict=True):
                linear.weight.copy_(self.torch.tensor(w).T)
                linear.bias.copy_(self.torch.tensor(b))

    def evaluate(self):
        f = self.torch.nn.functional
        out = []
        with self.torch.no_grad():
            for x, y in ((self.x_train, self.y_train), (self.x_test, self.y_test)):
                logits = self.model(x)
                out += [f.cross_entropy(logits, y).item(), (logits.argmax(-1) == y).float().mean().item()]
        return out

    def run_member(self, order):
        """Train the model as it stands on the minibatches ``order`` ``(steps, batch)``; the evaluations
        ``{name: [value per evaluation]}``."""
        torch, spec = self.torch, self.spec
        f = torch.nn.functional
        opt = torch.optim.SGD(self.model.parameters(), lr=spec["learning_rate"], momentum=spec["momentum"])
        order = torch.from_numpy(order).long()
        evals = [self.evaluate()]
        every = spec["eval_every"]
        for t in range(spec["steps"]):
            idx = order[t]
            opt.zero_grad(set_to_none=True)
            f.cross_entropy(self.model(self.x_train[idx]), self.y_train[idx]).backward()
            opt.step()
            if (t + 1) % every == 0:
                evals.append(self.evaluate())
        return {name: [e[i] for e in evals] for i, name in enumerate(self.names)}


def main(argv):
    import torch  # here, so that importing this module (pytest's doctest collection) needs no torch

    t1 = time.perf_counter()
    spec = json.loads(argv[1])
    data = shared.read_data(spec["data"])
    torch.set_float32_matmul_precision("highest")
    trainer = Trainer(torch, spec, data, spec.get("threads"))
    inits = shared.load("torch_worker").initializers(torch)

    def member(name, seed, order):
        trainer.init_member(inits[name], seed)
        return trainer.run_member(order)

    t = time.perf_counter()
    evals = shared.run_members(spec, data[0].shape[0], member)
    run_s = time.perf_counter() - t
    shared.emit({"import_s": t1 - T0, "compile_s": 0.0, "run_s": run_s, **shared.summary(spec["inits"], evals),
                 "backend": "cpu", "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
                 "total_s": time.perf_counter() - T0})


if __name__ == "__main__":
    main(sys.argv)
