"""A check the CTC and RNN-T tests share: their recursions as a GPU runs them, on this backend."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxloss.ops import _common


def assert_unrolled_matches_reference(monkeypatch, loss_fn, case, ref_losses, ref_grad):
    """On a GPU the time recursions run several steps per loop iteration
    (``jaxloss.ops._common.SCAN_UNROLL``). With 4 steps, a count the callers' cases make divide
    neither loop's length, the program traced here carries the setting and gives the float64
    references' values and gradients. ``case`` is ``(logits, labels, logit_lengths,
    label_lengths)``, the references' arguments."""
    logits, labels, logit_lengths, label_lengths = case
    monkeypatch.setitem(_common.SCAN_UNROLL, jax.default_backend(), 4)

    def total(x):
        return loss_fn(x, labels, logit_lengths=logit_lengths, label_lengths=label_lengths).sum()

    x = jnp.asarray(logits)
    assert "unroll=4" in str(jax.make_jaxpr(jax.value_and_grad(total))(x))
    loss, grad = jax.value_and_grad(total)(x)
    np.testing.assert_allclose(loss, ref_losses(*case).sum(), rtol=1e-5)
    np.testing.assert_allclose(grad, ref_grad(*case), atol=2e-5)
