"""Porting tables: each row pairs a peer's call with the jaxloss call, checked at build time.

A row names the jaxloss objects it uses (``uses``); the row is rendered with them only if every one
exists in the installed jaxloss, otherwise its jaxloss cell says the name is not available. For
optax and PyTorch a second column shows ``jaxloss.compat.optax`` / ``jaxloss.compat.torch`` (same
name, same signature) when that module defines the name. Peer calls are the peers' documented
signatures; argument names follow the peer.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple


class Row(NamedTuple):
    peer: str
    jaxloss: str
    uses: tuple[str, ...]
    note: str = ""


def lookup(dotted: str) -> Any | None:
    """The object at ``dotted`` (``jaxloss.ops.ctc_loss``), or ``None`` when it does not exist."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            if not hasattr(obj, part):
                return None
            obj = getattr(obj, part)
        return obj
    return None


KERAS2 = [
    Row(
        "tf.keras.losses.MeanSquaredError()",
        "jaxloss.MeanSquaredError()",
        ("jaxloss.MeanSquaredError",),
    ),
    Row(
        "tf.keras.losses.mean_squared_error(y, p)",
        "jaxloss.mean_squared_error(y, p)",
        ("jaxloss.mean_squared_error",),
    ),
    Row(
        "tf.keras.losses.mse / MSE / mae / mape / msle",
        "jaxloss.mse / MSE / mae / mape / msle",
        ("jaxloss.mse", "jaxloss.MSE", "jaxloss.mae", "jaxloss.mape", "jaxloss.msle"),
    ),
    Row("tf.keras.losses.logcosh(y, p)", "jaxloss.logcosh(y, p)", ("jaxloss.logcosh",)),
    Row(
        "tf.keras.losses.huber_loss(y, p, delta)",
        "jaxloss.huber_loss(y, p, delta)",
        ("jaxloss.huber_loss",),
    ),
    Row(
        "tf.keras.losses.kullback_leibler_divergence(y, p)",
        "jaxloss.kullback_leibler_divergence(y, p)",
        ("jaxloss.kullback_leibler_divergence",),
    ),
    Row(
        "tf.keras.losses.cosine_proximity(y, p)",
        "jaxloss.cosine_proximity(y, p)",
        ("jaxloss.cosine_proximity",),
        "the negative cosine similarity, as in Keras 2.3+",
    ),
    Row(
        "tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE / AUTO / SUM / NONE",
        "jaxloss.Reduction.SUM_OVER_BATCH_SIZE / AUTO / SUM / NONE",
        ("jaxloss.Reduction",),
        "`AUTO` means `SUM_OVER_BATCH_SIZE`",
    ),
    Row(
        'model.compile(loss="categorical_crossentropy")',
        'loss_fn = jaxloss.get("categorical_crossentropy")',
        ("jaxloss.get",),
        "a name gives the function handle; a class name gives an instance",
    ),
    Row('tf.keras.losses.get("Huber")', 'jaxloss.get("Huber")', ("jaxloss.get",)),
    Row(
        "tf.keras.losses.serialize(loss) / deserialize(config)",
        "jaxloss.serialize(loss) / jaxloss.deserialize(config)",
        ("jaxloss.serialize", "jaxloss.deserialize"),
    ),
    Row(
        "class MyLoss(tf.keras.losses.Loss): def call(self, y, p)",
        "class MyLoss(jaxloss.Loss): def call(self, y, p)",
        ("jaxloss.Loss",),
        "options are dataclass fields, not `__init__` attributes",
    ),
    Row(
        "tf.keras.losses.LossFunctionWrapper(fn, **kwargs)",
        "jaxloss.LossFunctionWrapper(fn, **kwargs)",
        ("jaxloss.LossFunctionWrapper",),
    ),
    Row(
        "tf.keras.utils.to_categorical(y, num_classes)",
        "jaxloss.to_categorical(y, num_classes)",
        ("jaxloss.to_categorical",),
    ),
    Row(
        "tf.keras.backend.ctc_batch_cost(y, p, input_length, label_length)",
        "jaxloss.ops.ctc_loss(logits, y, logit_lengths=input_length, label_lengths=label_length)",
        ("jaxloss.ops.ctc_loss",),
        "`ctc_batch_cost` takes softmax outputs: pass `jnp.log(p)` as the logits",
    ),
    Row(
        "model.add_loss(penalty)",
        "add the penalty to the loss inside the jitted step",
        (),
        "see the multi-output example",
    ),
]

OPTAX = [
    Row(
        "sigmoid_binary_cross_entropy(logits, labels)",
        "jaxloss.ops.sigmoid_binary_cross_entropy(logits, labels)",
        ("jaxloss.ops.sigmoid_binary_cross_entropy",),
    ),
    Row(
        "softmax_cross_entropy(logits, labels)",
        "jaxloss.ops.softmax_cross_entropy(logits, labels)",
        ("jaxloss.ops.softmax_cross_entropy",),
    ),
    Row(
        "softmax_cross_entropy_with_integer_labels(logits, labels)",
        "jaxloss.ops.sparse_softmax_cross_entropy(logits, labels)",
        ("jaxloss.ops.sparse_softmax_cross_entropy",),
        "one fused backward; no one-hot",
    ),
    Row(
        "sigmoid_focal_loss(logits, labels, alpha, gamma)",
        "jaxloss.binary_focal_crossentropy(labels, logits, from_logits=True, apply_class_balancing=True, alpha=alpha, gamma=gamma)",
        ("jaxloss.binary_focal_crossentropy",),
        "Keras order; the jaxloss function averages over the last axis",
    ),
    Row(
        "squared_error(predictions, targets)",
        "jaxloss.mean_squared_error(targets, predictions)",
        ("jaxloss.mean_squared_error",),
        "averages over the last axis",
    ),
    Row(
        "l2_loss(predictions, targets)",
        "0.5 * jaxloss.mean_squared_error(targets, predictions)",
        ("jaxloss.mean_squared_error",),
        "averages over the last axis",
    ),
    Row(
        "huber_loss(predictions, targets, delta)",
        "jaxloss.huber(targets, predictions, delta)",
        ("jaxloss.huber",),
        "averages over the last axis",
    ),
    Row(
        "log_cosh(predictions, targets)",
        "jaxloss.log_cosh(targets, predictions)",
        ("jaxloss.log_cosh",),
        "averages over the last axis",
    ),
    Row(
        "cosine_similarity(predictions, targets)",
        "-jaxloss.cosine_similarity(targets, predictions)",
        ("jaxloss.cosine_similarity",),
        "Keras' cosine loss is the negative similarity",
    ),
    Row(
        "cosine_distance(predictions, targets)",
        "1 + jaxloss.cosine_similarity(targets, predictions)",
        ("jaxloss.cosine_similarity",),
    ),
    Row(
        "hinge_loss(predictor_outputs, targets)",
        "jaxloss.hinge(targets, predictor_outputs)",
        ("jaxloss.hinge",),
        "averages over the last axis; labels 0 are read as -1",
    ),
    Row(
        "kl_divergence(log_predictions, targets)",
        "jaxloss.kl_divergence(targets, jnp.exp(log_predictions))",
        ("jaxloss.kl_divergence",),
        "Keras clips both to [1e-7, 1]",
    ),
    Row(
        "ctc_loss(logits, logit_paddings, labels, label_paddings, blank_id)",
        "jaxloss.ops.ctc_loss(logits, labels, logit_lengths=..., label_lengths=..., blank_id=blank_id)",
        ("jaxloss.ops.ctc_loss",),
        "lengths instead of paddings: `lengths = (1 - paddings).sum(-1)`",
    ),
]
OPTAX_NAMES = [
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "safe_softmax_cross_entropy",
    "sigmoid_focal_loss",
    "poly_loss_cross_entropy",
    "squared_error",
    "l2_loss",
    "huber_loss",
    "log_cosh",
    "cosine_similarity",
    "cosine_distance",
    "hinge_loss",
    "multiclass_hinge_loss",
    "perceptron_loss",
    "multiclass_perceptron_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "convex_kl_divergence",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "sparsemax_loss",
    "multiclass_sparsemax_loss",
    "ntxent",
    "triplet_margin_loss",
    "ranking_softmax_loss",
]

TORCH = [
    Row(
        "F.cross_entropy(input, target)",
        "jaxloss.SparseCategoricalCrossentropy(from_logits=True)(target, input)",
        ("jaxloss.SparseCategoricalCrossentropy",),
    ),
    Row(
        "F.cross_entropy(input, target, ignore_index=-100, label_smoothing=ls)",
        "jaxloss.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100, label_smoothing=ls)(target, input)",
        ("jaxloss.SparseCategoricalCrossentropy",),
        "the mean is over the valid targets, as in torch",
    ),
    Row(
        "F.cross_entropy(input, target, weight=w)",
        'jaxloss.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")(target, input, sample_weight=w[target])',
        ("jaxloss.SparseCategoricalCrossentropy",),
        "torch divides by the weights of the targets",
    ),
    Row(
        "F.cross_entropy(input, probs)",
        "jaxloss.CategoricalCrossentropy(from_logits=True)(probs, input)",
        ("jaxloss.CategoricalCrossentropy",),
    ),
    Row(
        "F.nll_loss(log_probs, target)",
        "jaxloss.SparseCategoricalCrossentropy(from_logits=True)(target, log_probs)",
        ("jaxloss.SparseCategoricalCrossentropy",),
        "log-softmax leaves normalised log-probabilities unchanged",
    ),
    Row(
        "F.binary_cross_entropy(input, target)",
        "jaxloss.BinaryCrossentropy()(target, input)",
        ("jaxloss.BinaryCrossentropy",),
        "probabilities clipped to [1e-7, 1 - 1e-7] (torch clamps the log at -100)",
    ),
    Row(
        "F.binary_cross_entropy_with_logits(input, target, pos_weight=w)",
        "jaxloss.BinaryCrossentropy(from_logits=True, pos_weight=w)(target, input)",
        ("jaxloss.BinaryCrossentropy",),
    ),
    Row(
        "F.mse_loss(input, target)",
        "jaxloss.MeanSquaredError()(target, input)",
        ("jaxloss.MeanSquaredError",),
    ),
    Row(
        "F.l1_loss(input, target)",
        "jaxloss.MeanAbsoluteError()(target, input)",
        ("jaxloss.MeanAbsoluteError",),
    ),
    Row(
        "F.huber_loss(input, target, delta=d)",
        "jaxloss.Huber(delta=d)(target, input)",
        ("jaxloss.Huber",),
    ),
    Row(
        "F.smooth_l1_loss(input, target, beta=b)",
        "jaxloss.Huber(delta=b)(target, input) / b",
        ("jaxloss.Huber",),
    ),
    Row(
        'F.kl_div(log_input, target, reduction="batchmean")',
        "jaxloss.KLDivergence()(target, jnp.exp(log_input))",
        ("jaxloss.KLDivergence",),
        "Keras clips both to [1e-7, 1]",
    ),
    Row(
        "F.poisson_nll_loss(input, target, log_input=False)",
        "jaxloss.Poisson()(target, input)",
        ("jaxloss.Poisson",),
        "epsilon 1e-7 (torch: 1e-8)",
    ),
    Row(
        'F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")',
        "jaxloss.ops.ctc_loss(log_probs.transpose(1, 0, 2), targets, logit_lengths=input_lengths, label_lengths=target_lengths)",
        ("jaxloss.ops.ctc_loss",),
        "batch first; torch's `mean` also divides by the target lengths",
    ),
    Row(
        'F.linear_cross_entropy(input, weight, target, reduction="none")',
        "jaxloss.ops.linear_cross_entropy(input, weight.T, target)",
        ("jaxloss.ops.linear_cross_entropy",),
        "jaxloss's weight is [D, V]",
    ),
]
TORCH_NAMES = [
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "smooth_l1_loss",
    "kl_div",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "ctc_loss",
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "soft_margin_loss",
    "cosine_embedding_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]

# Keras 3.15's loss classes (keras.losses); the function of each is its registered snake-case name.
KERAS3_CLASSES = {
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy",
    "CategoricalHinge",
    "Circle",
    "CosineSimilarity",
    "CTC",
    "Dice",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "Tversky",
}
