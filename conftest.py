"""Test configuration (tests and doctests): 8 host CPU devices for sharding, Keras on JAX.

Both variables must be set before jax (or keras) is first imported, which is why they live here.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
