"""Test configuration (tests and doctests): 8 host CPU devices for sharding, Keras on JAX.

Both variables must be set before jax (or keras) is first imported, which is why they live here.

The suite's arrays are tiny, so its time is almost all XLA compilation, and most of that is
LLVM optimising machine code that then runs for microseconds: the suite compiles with LLVM's
optimisation level 0 (about a quarter less CPU time). The HLO XLA builds, its fusions and its
floating-point semantics are unchanged; in particular the fused multiply-add contraction that
made Circle's largest logit differ between eager and jit still happens at level 0, so the
jit-versus-eager checks keep their power.

Many tests compile the same program from different Python functions (each loss under every
reduction, jit and eager, the faces over one kernel), which ``jax.jit``'s in-memory cache, keyed
on the function, compiles again. JAX's persistent compilation cache is keyed on the program
itself: the run shares one in a temporary directory (both xdist workers inherit it from the
controller, which removes it at the end), with no minimum compile time. On three of the larger
test files it took the time from 133 s to 99 s; the whole suite's pytest from about 710 s to 600
s. An entry one worker reads while the other is still writing it fails to deserialise, and JAX
then warns and compiles (no test here turns warnings into errors).
"""

import os
import shutil
import tempfile

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The controller (or a run without xdist) creates the cache; xdist workers inherit the variable.
_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE = tempfile.mkdtemp(prefix="jaxloss-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def pytest_unconfigure(config):
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
