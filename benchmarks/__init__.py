"""jaxloss benchmark suites (run with ``python -m benchmarks``)."""
