"""The training benchmark's works (what every contender trains), its contenders' names and its targets.

A work is ``len(inits) x seeds`` members, each a ReLU MLP (``depth`` hidden layers of ``width``
units, a linear readout) trained on scikit-learn's digits for ``steps`` steps of SGD with momentum
on minibatches of ``batch`` examples (softmax cross-entropy), and evaluated every ``eval_every``
steps (and at step 0) on the whole training and test sets (loss and accuracy). ``T0`` and ``T1``
are issue 13's works; ``quick`` is a tiny one for tests and smoke runs.

FLOPs are counted as matmul multiply-adds x 2: one example's forward pass costs
``2 (in_dim w + (depth - 1) w^2 + w out_dim)``; a training step costs three forward passes of the
minibatch (the forward, and the backward's two matmuls per layer: the input gradient and the
kernel gradient), the usual ``3x forward`` rule (Kaplan et al. 2020, "Scaling Laws for Neural
Language Models", section 2.1, counts the same ``2N`` forward and ``4N`` backward per token).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_TRAIN_INITS", "FLATNESS_STEPS", "FLATNESS_TARGET", "TRAIN_LEGEND", "TRAIN_RUNS",
           "TRAIN_TARGETS", "WORKS", "TrainWork", "work_choice", "work_names", "write_data"]

DEFAULT_TRAIN_INITS = ("he_normal", "glorot_normal", "lecun_normal", "orthogonal")
# Initializers every contender has under the same name (jax.nn.initializers.<name>, jaxinit's registry)
# and a torch.nn.init namesake (jaxinit.bench.torch_worker.initializers).
SUPPORTED_TRAIN_INITS = ("he_normal", "glorot_normal", "lecun_normal", "orthogonal", "he_uniform", "glorot_uniform",
                         "lecun_uniform")

# run key -> display label; the order of the table.
TRAIN_RUNS = {
    "jaxinit": "jaxinit train",
    "flax_loop": "(a) flax loop",
    "jax_scan": "(b) jax scan",
    "torch_loop": "(c) torch loop",
}
TRAIN_LEGEND = {
    "jaxinit": "compile_train + run_chunk over every member (members in vmap groups under lax.map, lax.scan "
               "steps, blocks of seeds spread over one CPU device per core)",
    "flax_loop": "per member a Python loop of a jitted optax step (flax.linen MLP), one call per step; jitted "
                 "evaluation every eval_every steps",
    "jax_scan": "per member the whole run (steps and evaluations) in one jitted lax.scan, compiled once and "
                "reused for every member",
    "torch_loop": "per member torch.nn.init on nn.Linear layers + torch.optim.SGD, one step per minibatch",
}
TRAIN_BASELINES = ("flax_loop", "jax_scan", "torch_loop")

# Issue 13's targets: speedup = baseline end-to-end time / jaxinit's (> 1: jaxinit ahead); "ceiling" is
# the fraction of the matmul ceiling jaxinit's warm run reaches.
TRAIN_TARGETS = {
    "T0": (("flax_loop", 2.0), ("jax_scan", 1.5), ("torch_loop", 2.5), ("ceiling", 0.5)),
    "T1": (("flax_loop", 4.0), ("jax_scan", 2.0), ("torch_loop", 8.0)),
}
FLATNESS_STEPS = (100, 10_000)  # compile time at these step counts ...
FLATNESS_TARGET = 1.5           # ... within this factor


@dataclasses.dataclass(frozen=True)
class TrainWork:
    """One work of the training benchmark (see the module docstring)."""

    name: str
    depth: int = 6
    width: int = 128
    batch: int = 64
    seeds: int = 16
    inits: tuple[str, ...] = DEFAULT_TRAIN_INITS
    steps: int = 1000
    eval_every: int = 50
    learning_rate: float = 0.01
    momentum: float = 0.9
    test_fraction: float = 0.25

    def __post_init__(self):
        object.__setattr__(self, "inits", tuple(self.inits))
        unknown = [n for n in self.inits if n not in SUPPORTED_TRAIN_INITS]
        if unknown or not self.inits:
            raise ValueError(f"inits must be some of {', '.join(SUPPORTED_TRAIN_INITS)} (every contender has "
                             f"them); got {', '.join(unknown) if unknown else 'none'}.")
        if len(set(self.inits)) != len(self.inits):
            raise ValueError(f"inits must be distinct; got {', '.join(self.inits)}.")
        for name in ("depth", "width", "batch", "seeds", "steps", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
        if self.steps % self.eval_every:
            raise ValueError(f"steps must be a multiple of eval_every (every contender evaluates at the same "
                             f"steps); got steps={self.steps}, eval_every={self.eval_every}.")
        for name in ("learning_rate", "test_fraction"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < (
                    1 if name == "test_fraction" else float("inf")):
                raise ValueError(f"{name} must be a number in {'(0, 1)' if name == 'test_fraction' else '(0, inf)'}"
                                 f"; got {value!r}.")
        if not isinstance(self.momentum, int | float) or not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be a number in [0, 1); got {self.momentum!r}.")

    @property
    def members(self) -> int:
        return len(self.inits) * self.seeds

    @property
    def evaluations(self) -> int:
        """Evaluations per member: at step 0 and every ``eval_every`` steps."""
        return self.steps // self.eval_every + 1

    def forward_flops_per_example(self, in_dim: int, out_dim: int) -> float:
        return 2.0 * (in_dim * self.width + (self.depth - 1) * self.width**2 + self.width * out_dim)

    def train_flops_per_member_step(self, in_dim: int, out_dim: int) -> float:
        """Forward + backward matmul FLOPs of one step of one member: 3x the minibatch's forward."""
        return 3.0 * self.batch * self.forward_flops_per_example(in_dim, out_dim)

    def flops(self, in_dim: int, out_dim: int, n_train: int, n_test: int) -> dict[str, float]:
        """The work's matmul FLOPs: ``train`` (every member-step) and ``eval`` (every evaluation's forward
        passes over the training and test sets)."""
        train = self.members * self.steps * self.train_flops_per_member_step(in_dim, out_dim)
        evals = self.members * self.evaluations * (n_train + n_test) * self.forward_flops_per_example(in_dim, out_dim)
        return {"train": train, "eval": evals}

    def spec(self) -> dict[str, Any]:
        """The work as JSON-able data (what the workers read)."""
        return {**dataclasses.asdict(self), "inits": list(self.inits), "members": self.members,
                "evaluations": self.evaluations}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TrainWork:
        return cls(**{f.name: spec[f.name] for f in dataclasses.fields(cls)})


WORKS = {
    "T0": TrainWork("T0", depth=6, width=128, batch=64, seeds=16),
    "T1": TrainWork("T1", depth=3, width=32, batch=32, seeds=64),
    # A tiny work: every contender end to end in seconds (tests, smoke runs).
    "quick": TrainWork("quick", depth=2, width=16, batch=16, seeds=2, inits=("he_normal", "orthogonal"), steps=20,
                       eval_every=10),
}


def work_names(choice: str) -> tuple[str, ...]:
    """``"T0"``, ``"T1"``, ``"both"`` (T0 then T1) or ``"quick"`` -> the works' names."""
    if choice == "both":
        return ("T0", "T1")
    if choice not in WORKS:
        raise ValueError(f"work must be one of T0, T1, both, quick; got {choice!r}.")
    return (choice,)


def work_choice(text: str) -> str:
    """The argparse type of ``--work``: ``T0``, ``T1`` or ``both``."""
    if text not in ("T0", "T1", "both"):
        raise argparse.ArgumentTypeError(f"choose from T0, T1, both; got {text!r}")
    return text


def write_data(work: TrainWork, path: str | Path) -> dict[str, int]:
    """Save the digits split of ``work`` (:func:`jaxinit.lab.data.digits`, standardized with the training
    set's statistics) as ``.npz`` with ``x_train, y_train, x_test, y_test``: every contender reads the
    same arrays. Returns the data's sizes. Needs scikit-learn; starts no JAX backend."""
    import numpy as np

    from jaxinit.lab.data import digits

    d = digits(work.test_fraction)
    np.savez(path, x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)
    return {"n_train": d.n_train, "n_test": d.n_test, "in_dim": d.in_dim, "out_dim": d.out_dim}
