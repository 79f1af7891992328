"""jaxloss benchmark suites (run with ``python -m benchmarks``)."""

import os

# PyTorch's OpenMP workers spin on the cores for a while after each parallel region by default;
# timed interleaved with other contenders, that spinning steals the CPU from whichever contender
# runs next. Passive waiting (set before torch is imported) makes them sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
