"""CTC decoders: ``jaxloss.ops.ctc_greedy_decode`` / ``ctc_beam_search_decode`` against
``keras.ops.ctc_decode`` and against an exact enumeration of labellings."""

import itertools

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from jaxloss.ops import ctc_beam_search_decode, ctc_greedy_decode
from tests.test_ctc import dp_nll, np_log_softmax

RNG = np.random.default_rng(99)
B, T, C = 3, 7, 5
LENGTHS = np.array([7, 5, 3], np.int32)


def _logits(seed):
    return np.random.default_rng(seed).normal(size=(B, T, C)).astype(np.float32) * 2


@pytest.mark.parametrize("blank", [0, 2])
@pytest.mark.parametrize("merge", [True, False])
def test_greedy_matches_keras(blank, merge):
    logits = _logits(blank + 10 * merge)
    decoded, scores = ctc_greedy_decode(logits, LENGTHS, blank_id=blank, merge_repeated=merge)
    logp = np_log_softmax(logits).astype(np.float32)
    k_decoded, k_scores = keras.ops.ctc_decode(
        logp, LENGTHS, strategy="greedy", merge_repeated=merge, mask_index=blank
    )
    assert decoded.shape == (B, T) and decoded.dtype == jnp.int32
    np.testing.assert_array_equal(decoded, np.asarray(k_decoded)[0])
    # Keras' score is minus the sum of the per-frame maxima of its (here log-softmaxed) input.
    np.testing.assert_allclose(scores, -np.asarray(k_scores)[:, 0], rtol=1e-5)


def test_greedy_by_hand():
    path = [1, 1, 0, 1, 2, 2, 0]  # blank 0
    logits = np.full((1, 7, 3), -5.0, np.float32)
    logits[0, np.arange(7), path] = 5.0
    decoded, scores = ctc_greedy_decode(logits)
    np.testing.assert_array_equal(decoded[0], [1, 1, 2, -1, -1, -1, -1])
    np.testing.assert_allclose(scores[0], 7 * np_log_softmax(logits)[0, 0].max(), atol=1e-6)
    decoded, _ = ctc_greedy_decode(logits, merge_repeated=False)
    np.testing.assert_array_equal(decoded[0], [1, 1, 1, 2, 2, -1, -1])
    decoded, _ = ctc_greedy_decode(logits, np.array([2]))
    np.testing.assert_array_equal(decoded[0], [1, -1, -1, -1, -1, -1, -1])


@pytest.mark.parametrize("beam_width,top_paths,blank", [(4, 3, C - 1)])
def test_beam_search_matches_keras(beam_width, top_paths, blank):
    logits = _logits(beam_width)
    decoded, scores = ctc_beam_search_decode(
        logits, LENGTHS, beam_width=beam_width, top_paths=top_paths, blank_id=blank
    )
    keras_decode = jax.jit(
        lambda x, n: keras.ops.ctc_decode(
            x,
            n,
            strategy="beam_search",
            beam_width=beam_width,
            top_paths=top_paths,
            mask_index=blank,
        )
    )
    k_decoded, k_scores = keras_decode(logits, LENGTHS)
    assert decoded.shape == (B, top_paths, T) and scores.shape == (B, top_paths)
    np.testing.assert_array_equal(decoded, np.transpose(np.asarray(k_decoded), (1, 0, 2)))
    np.testing.assert_allclose(scores, k_scores, rtol=1e-5)


def _all_labellings(classes, max_len, blank):
    symbols = [c for c in range(classes) if c != blank]
    for n in range(max_len + 1):
        yield from itertools.product(symbols, repeat=n)


def test_wide_beam_is_exact():
    """A beam wider than the number of prefixes keeps them all: the result is the exact ranking
    of labellings by their total probability over alignments."""
    time, classes, blank = 4, 3, 1
    logits = RNG.normal(size=(2, time, classes)).astype(np.float32)
    decoded, scores = ctc_beam_search_decode(logits, beam_width=40, top_paths=6, blank_id=blank)
    logp = np_log_softmax(logits)
    for b in range(2):
        ranked = sorted(
            (
                (-dp_nll(logp[b], list(lab), blank), lab)
                for lab in _all_labellings(classes, time, blank)
            ),
            reverse=True,
        )[:6]
        np.testing.assert_allclose(scores[b], [s for s, _ in ranked], rtol=1e-5)
        for k, (_, lab) in enumerate(ranked):
            np.testing.assert_array_equal(decoded[b, k], list(lab) + [-1] * (time - len(lab)))


def test_beam_search_pads_missing_paths_and_handles_empty_inputs():
    logits = RNG.normal(size=(2, 2, 2)).astype(np.float32)  # only [] and [1] are possible
    decoded, scores = ctc_beam_search_decode(logits, np.array([2, 0]), beam_width=4, top_paths=3)
    assert np.all(np.isfinite(scores[0, :2])) and np.isneginf(scores[0, 2])
    np.testing.assert_array_equal(decoded[0, 2], [-1, -1])
    # A zero-length input decodes to the empty sequence with probability 1.
    np.testing.assert_array_equal(decoded[1, 0], [-1, -1])
    assert scores[1, 0] == 0 and np.all(np.isneginf(scores[1, 1:]))


def test_decoders_jit_and_vmap():
    logits = np.stack([_logits(1), _logits(2)])
    lengths = np.stack([LENGTHS, LENGTHS[::-1]])
    # Same options as a Keras case above, so the eager results are compiled already.
    beam = lambda x, n: ctc_beam_search_decode(x, n, beam_width=4, top_paths=3)
    greedy = lambda x, n: ctc_greedy_decode(x, n)
    for decode in (beam, greedy):
        batched = jax.jit(jax.vmap(decode))(logits, lengths)
        for i in range(2):
            looped = decode(logits[i], lengths[i])
            for got, want in zip(batched, looped, strict=True):
                np.testing.assert_array_equal(got[i], want)


def test_bad_options_raise():
    logits = np.zeros((1, 3, 4), np.float32)
    with pytest.raises(ValueError, match="ctc_beam_search_decode: `beam_width` must be"):
        ctc_beam_search_decode(logits, beam_width=0)
    with pytest.raises(ValueError, match="ctc_beam_search_decode: `top_paths` must be <="):
        ctc_beam_search_decode(logits, beam_width=2, top_paths=3)
    with pytest.raises(ValueError, match="ctc_greedy_decode: `blank_id` must be in"):
        ctc_greedy_decode(logits, blank_id=4)
    with pytest.raises(ValueError, match="ctc_greedy_decode: `logits` must have shape"):
        ctc_greedy_decode(logits[0])
