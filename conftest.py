"""Test configuration (tests and doctests): 8 host CPU devices for sharding, Keras on JAX.

Both variables must be set before jax (or keras) is first imported, which is why they live here.

The suite's arrays are tiny, so its time is almost all XLA compilation, and most of that is
LLVM optimising machine code that then runs for microseconds: the suite compiles with LLVM's
optimisation level 0 (about a quarter less CPU time). The HLO XLA builds, its fusions and its
floating-point semantics are unchanged; in particular the fused multiply-add contraction that
made Circle's largest logit differ between eager and jit still happens at level 0, so the
jit-versus-eager checks keep their power.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
