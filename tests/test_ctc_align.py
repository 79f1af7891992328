"""Forced alignment: ``jaxloss.ops.ctc_align`` against brute-force enumeration of every CTC path.

The reference walks all ``classes ** time`` paths of a tiny row, keeps those that collapse to the
target, and picks the most probable one in float64; ties are measure-zero with random logits.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxloss.ops import CTCAlignment, ctc_align


def np_log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def best_path(logp, target, blank):
    """(score, frames) of the most probable path spelling ``target``; frames hold the position in
    ``target`` emitted at each frame, -1 for blanks. (-inf, all -1) if no path exists."""
    time, classes = logp.shape
    best, best_frames = -np.inf, [-1] * time
    for path in itertools.product(range(classes), repeat=time):
        frames, pos, prev = [], -1, None
        for c in path:
            if c != blank and c != prev:
                pos += 1
            frames.append(pos if c != blank else -1)
            prev = c
        spelled = [c for i, c in enumerate(path) if c != blank and (i == 0 or path[i - 1] != c)]
        if spelled != list(target):
            continue
        score = sum(logp[t, c] for t, c in enumerate(path))
        if score > best:
            best, best_frames = score, frames
    return best, best_frames


def reference(logits, labels, logit_lengths, label_lengths, blank=0):
    logp = np_log_softmax(logits)
    batch, time, _ = logits.shape
    frames = np.full((batch, time), -1)
    starts = np.full(labels.shape, -1)
    ends = np.full(labels.shape, -1)
    scores = np.zeros(batch)
    for b in range(batch):
        n_t, n_l = logit_lengths[b], label_lengths[b]
        scores[b], f = best_path(logp[b, :n_t], labels[b, :n_l], blank)
        frames[b, :n_t] = f
        for j in range(n_l):
            hits = np.flatnonzero(frames[b] == j)
            if hits.size:
                starts[b, j], ends[b, j] = hits[0], hits[-1]
    return frames, starts, ends, scores


def assert_alignment(got, expected):
    frames, starts, ends, scores = expected
    np.testing.assert_array_equal(got.frames, frames)
    np.testing.assert_array_equal(got.starts, starts)
    np.testing.assert_array_equal(got.ends, ends)
    np.testing.assert_allclose(got.scores, scores, rtol=1e-5)


@pytest.mark.parametrize("blank", [0, 2], ids=["blank_0", "blank_2"])
def test_matches_brute_force_enumeration(blank):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(4, 6, 3)).astype(np.float32) * 2
    non_blank = [c for c in range(3) if c != blank]
    labels = rng.choice(non_blank, size=(4, 3)).astype(np.int32)
    labels[1] = [non_blank[0], non_blank[0], non_blank[1]]  # a repeat needs a blank between
    label_lengths = np.array([2, 3, 0, 1], np.int32)
    logit_lengths = np.array([6, 5, 6, 4], np.int32)
    got = ctc_align(
        logits, labels, logit_lengths=logit_lengths, label_lengths=label_lengths, blank_id=blank
    )
    assert isinstance(got, CTCAlignment)
    assert got.frames.dtype == jnp.int32 and got.frames.shape == (4, 6)
    assert_alignment(got, reference(logits, labels, logit_lengths, label_lengths, blank))


def test_default_lengths_and_exact_fit():
    """With as many frames as labels (no repeats) the only path emits one label per frame."""
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(2, 5, 4)).astype(np.float32)
    labels = np.array([[1, 2, 3, 1, 2], [3, 3, 1, 2, 1]], np.int32)
    got = ctc_align(logits[:1], labels[:1])
    np.testing.assert_array_equal(got.frames, [[0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(got.starts, got.ends)
    logp = np_log_softmax(logits[0])
    np.testing.assert_allclose(got.scores, [logp[np.arange(5), labels[0]].sum()], rtol=1e-6)
    # the second row has a repeat: 5 labels + 1 blank do not fit in 5 frames
    got = ctc_align(logits, labels)
    assert np.isneginf(got.scores[1])
    assert np.all(np.asarray(got.frames[1]) == -1) and np.all(np.asarray(got.starts[1]) == -1)
    np.testing.assert_array_equal(got.frames[0], [0, 1, 2, 3, 4])


def test_masked_classes_and_infeasible_rows():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(3, 5, 3)).astype(np.float32)
    logits[0, :, 2] = -np.inf  # class 2 never emitted: row 0 cannot spell [1, 2]
    labels = np.array([[1, 2], [1, 2], [2, 1]], np.int32)
    got = ctc_align(logits, labels, logit_lengths=np.array([5, 5, 1], np.int32))
    assert np.isneginf(got.scores[0]) and np.isneginf(got.scores[2])
    expected = reference(logits[1:2], labels[1:2], [5], [2])
    assert_alignment(
        CTCAlignment(got.frames[1:2], got.starts[1:2], got.ends[1:2], got.scores[1:2]), expected
    )


def test_out_of_range_label_gives_nan_in_its_row_only():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(2, 5, 3)).astype(np.float32)
    labels = np.array([[1, 7], [1, 2]], np.int32)
    got = ctc_align(logits, labels)
    assert np.isnan(got.scores[0]) and np.all(np.asarray(got.frames[0]) == -1)
    expected = reference(logits[1:], labels[1:], [5], [2])
    np.testing.assert_array_equal(got.frames[1:], expected[0])
    np.testing.assert_allclose(got.scores[1:], expected[3], rtol=1e-5)


def test_jit_and_vmap_equal_the_eager_loop():
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(2, 3, 6, 3)).astype(np.float32)
    labels = rng.integers(1, 3, size=(2, 3, 2)).astype(np.int32)
    lengths = np.array([[6, 5, 4], [3, 6, 6]], np.int32)

    def align(x, y, n):
        return ctc_align(x, y, logit_lengths=n)

    batched = jax.jit(jax.vmap(align))(logits, labels, lengths)
    for i in range(2):
        looped = align(logits[i], labels[i], lengths[i])
        for field, got in zip(CTCAlignment._fields, batched, strict=True):
            np.testing.assert_allclose(got[i], getattr(looped, field), rtol=1e-6, err_msg=field)


def test_bad_static_input_raises():
    logits = np.zeros((2, 4, 3), np.float32)
    labels = np.ones((2, 2), np.int32)
    with pytest.raises(ValueError, match=r"ctc_align: `logits` must have shape .*; got shape"):
        ctc_align(logits[0], labels)
    with pytest.raises(TypeError, match="ctc_align: `logits` must be a float array; got"):
        ctc_align(logits.astype(np.int32), labels)
    with pytest.raises(TypeError, match="ctc_align: `labels` must be an integer array; got"):
        ctc_align(logits, labels.astype(np.float32))
    with pytest.raises(ValueError, match="ctc_align: `labels` must have batch size 2"):
        ctc_align(logits, np.ones((3, 2), np.int32))
    with pytest.raises(ValueError, match="ctc_align: `blank_id` must be in"):
        ctc_align(logits, labels, blank_id=3)
    with pytest.raises(TypeError, match="ctc_align: `blank_id` must be a Python int"):
        ctc_align(logits, labels, blank_id=0.0)
    with pytest.raises(ValueError, match="ctc_align: `logit_lengths` must have rank 1"):
        ctc_align(logits, labels, logit_lengths=np.ones((2, 1), np.int32))
