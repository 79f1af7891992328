"""Shared timing and memory helpers for the benchmark suites.

Contenders are timed *interleaved*: each round runs every contender once, in a rotating order, so
that drift in machine load (thermal, other processes) hits all of them alike. The reported number is
the median over rounds. Memory is XLA's compiled temp allocation, read from
``jax.jit(f).lower(*args).compile().memory_analysis()``. The torch contenders run on the device
JAX runs on (:func:`torch_device`): the CPU, or the GPU when both frameworks see one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax


def torch_device() -> str:
    """Where the torch contenders run: ``"cuda"`` when JAX's default backend is a GPU and torch
    sees one (so both frameworks run on the same chip), else ``"cpu"``."""
    import torch

    if jax.default_backend() == "gpu" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _wait(x: Any) -> Any:
    if hasattr(x, "block_until_ready"):
        return x.block_until_ready()
    if getattr(x, "is_cuda", False):  # a torch tensor on a GPU: its kernels run asynchronously
        import torch

        torch.cuda.synchronize(x.device)
    return x


def block(tree: Any) -> Any:
    """Wait for every array in ``tree`` (JAX arrays, torch tensors) to be computed."""
    return jax.tree_util.tree_map(_wait, tree)


def temp_bytes(fn: Callable, *args: Any) -> int | None:
    """Compiled temp memory of ``jax.jit(fn)(*args)`` in bytes (None if the backend cannot say)."""
    compiled = jax.jit(fn).lower(*args).compile()
    analysis = compiled.memory_analysis()
    if analysis is None:
        return None
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return int(getattr(analysis, "temp_size_in_bytes", 0))


def time_interleaved(
    contenders: dict[str, Callable[[], Any]],
    *,
    rounds: int = 10,
    warmup: int = 2,
    on_call: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Median wall time in seconds of each zero-argument callable, timed in interleaved rounds.

    Each callable must run the whole computation (already jitted, arguments bound) and return its
    outputs; the harness blocks on them so asynchronous dispatch is not mistaken for speed.
    ``on_call(name)`` (a progress bar) runs after each call, outside the timed region.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            block(contenders[name]())
            if on_call is not None:
                on_call(name)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            block(contenders[name]())
            samples[name].append(time.perf_counter() - start)
            if on_call is not None:
                on_call(name)
    return {name: statistics.median(values) for name, values in samples.items()}


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured markdown table of ``rows`` restricted to ``columns``."""
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join([head, sep, *body])
