"""Low-level loss kernels, prediction first, per-example output, no reductions (like jax.nn/optax).

Hand-written gradients (``jax.custom_vjp``) live here.
"""

# --- cross-entropy (issue 3) ---

# --- CTC (issue 4) ---

# --- linear cross-entropy (issue 6) ---

__all__: list[str] = [
    # cross-entropy (issue 3)
    # CTC (issue 4)
    # linear cross-entropy (issue 6)
]
