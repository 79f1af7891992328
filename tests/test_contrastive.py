"""CLIP and SigLIP: float64 references, chunked == whole, the [B, B] logits never materialised,
and global-batch equality (value and gradient) under ``shard_map`` for both collectives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import jaxloss
from jaxloss.ops import contrastive as ops
from tests.reference.contrastive import np_clip_loss, np_siglip_loss


def _pairs(seed, batch=16, dim=6):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(batch, dim)).astype(np.float32)
    text = (image + rng.normal(size=(batch, dim))).astype(np.float32)
    return image, text


def _naive(loss, image, text, scale, bias):
    """The textbook formula on the whole [B, B] matrix (an independent JAX twin for gradients)."""
    unit = lambda v: v / jnp.linalg.norm(v, axis=1, keepdims=True)
    logits = scale * unit(image) @ unit(text).T
    diag = jnp.diagonal(logits)
    if loss == "clip":
        rows = jax.nn.logsumexp(logits, axis=1) - diag
        return 0.5 * jnp.mean(rows + jax.nn.logsumexp(logits, axis=0) - diag)
    z = 2.0 * jnp.eye(len(image)) - 1.0
    return jnp.sum(jax.nn.softplus(-z * (logits + bias))) / len(image)


@pytest.mark.parametrize("chunk", [None, 5, 16], ids=["whole", "chunk5_padded", "chunk16"])
def test_values_match_the_float64_reference(chunk):
    image, text = _pairs(0)
    np.testing.assert_allclose(
        jaxloss.clip_loss(None, (image, text), chunk_size=chunk, logit_scale=3.0),
        np_clip_loss(None, (image, text), logit_scale=3.0),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jaxloss.siglip_loss(
            None, (image, text), chunk_size=chunk, logit_scale=3.0, logit_bias=-2.0
        ),
        np_siglip_loss(None, (image, text), logit_scale=3.0, logit_bias=-2.0),
        rtol=1e-5,
    )


def test_gradients_in_the_learnt_scale_and_bias_match_the_whole_matrix_formula():
    image, text = _pairs(1)
    loss = jaxloss.SigLipLoss(chunk_size=4)

    def ours(x, y, log_t, b):
        return loss(None, (x, y), log_logit_scale=log_t, logit_bias=b)

    got = jax.grad(ours, argnums=(0, 1, 2, 3))(image, text, jnp.log(5.0), -3.0)
    want = jax.grad(
        lambda x, y, lt, b: _naive("siglip", x, y, jnp.exp(lt), b), argnums=(0, 1, 2, 3)
    )(image, text, jnp.log(5.0), -3.0)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    clip = jaxloss.ClipLoss(chunk_size=3)
    got = jax.grad(lambda x, y, lt: clip(None, (x, y), log_logit_scale=lt), argnums=(0, 1, 2))(
        image, text, jnp.log(4.0)
    )
    want = jax.grad(lambda x, y, lt: _naive("clip", x, y, jnp.exp(lt), 0.0), argnums=(0, 1, 2))(
        image, text, jnp.log(4.0)
    )
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kernel", [ops.clip_loss, ops.siglip_loss], ids=["clip", "siglip"])
def test_chunked_gradient_never_holds_the_batch_by_batch_logits(kernel):
    batch, dim, chunk = 512, 8, 32
    image, text = _pairs(2, batch, dim)

    def loss(x, y, chunk_size):
        return jnp.mean(kernel(x, y, logit_scale=2.0, chunk_size=chunk_size))

    def temp(chunk_size):
        fn = jax.jit(jax.value_and_grad(lambda x, y: loss(x, y, chunk_size), argnums=(0, 1)))
        return fn.lower(image, text).compile().memory_analysis().temp_size_in_bytes

    square = batch * batch * 4
    assert temp(None) >= square  # the whole-batch block does hold [B, B]
    assert temp(chunk) < square / 4  # a few [B, chunk] blocks and [B, dim] arrays only


def test_bad_inputs_raise():
    image, text = _pairs(3)
    with pytest.raises(ValueError, match="clip_loss: `logit_scale` and `log_logit_scale`"):
        jaxloss.clip_loss(None, (image, text), logit_scale=2.0, log_logit_scale=1.0)
    with pytest.raises(ValueError, match="ClipLoss: `collective` must be"):
        jaxloss.ClipLoss(collective="tree")
    with pytest.raises(ValueError, match="siglip_loss: `chunk_size` must be None or an int >= 1"):
        jaxloss.siglip_loss(None, (image, text), chunk_size=0)
    with pytest.raises(TypeError, match="siglip_loss: `y_pred` must be the tuple"):
        jaxloss.siglip_loss(None, image)
    with pytest.raises(ValueError, match="clip_loss: `y_pred` must hold image and text"):
        jaxloss.clip_loss(None, (image, text[:3]))


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py)")
@pytest.mark.parametrize("collective", ["ring", "all_gather"])
@pytest.mark.parametrize("cls", [jaxloss.ClipLoss, jaxloss.SigLipLoss], ids=["clip", "siglip"])
def test_sharded_equals_the_global_batch(cls, collective):
    image, text = _pairs(4, batch=24)  # 3 pairs per device; chunk 2 pads each device's block
    mesh = Mesh(np.array(jax.devices()[:8]), ("d",))
    extra = {"logit_bias": -1.5} if cls is jaxloss.SigLipLoss else {}
    glob = cls(chunk_size=2)
    shard = cls(chunk_size=2, collective=collective, axis_name="d")

    def local(x, y, log_t):
        return shard(None, (x, y), log_logit_scale=log_t, **extra)

    sharded = jax.shard_map(local, mesh=mesh, in_specs=(P("d"), P("d"), P()), out_specs=P())
    value, grads = jax.jit(jax.value_and_grad(sharded, argnums=(0, 1, 2)))(
        image, text, jnp.log(3.0)
    )
    want, want_grads = jax.value_and_grad(
        lambda x, y, lt: glob(None, (x, y), log_logit_scale=lt, **extra), argnums=(0, 1, 2)
    )(image, text, jnp.log(3.0))
    np.testing.assert_allclose(value, want, rtol=1e-5)
    for g, w in zip(grads, want_grads, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
