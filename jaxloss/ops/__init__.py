"""Low-level loss kernels, prediction first, per-example output, no reductions (like jax.nn/optax).

Hand-written gradients (``jax.custom_vjp``) live here.
"""

# --- cross-entropy ---
# --- metric learning and image-text contrastive ---
from jaxloss.ops.contrastive import clip_loss, siglip_loss
from jaxloss.ops.cross_entropy import (
    sigmoid_binary_cross_entropy,
    sigmoid_binary_cross_entropy_jvp,
    softmax_cross_entropy,
    softmax_cross_entropy_jvp,
    sparse_softmax_cross_entropy,
    sparse_softmax_cross_entropy_jvp,
)

# --- CTC and RNN-T ---
from jaxloss.ops.ctc import (
    CTCAlignment,
    ctc_align,
    ctc_beam_search_decode,
    ctc_forward_variables,
    ctc_greedy_decode,
    ctc_loss,
    ctc_loss_jvp,
)

# --- distillation ---
from jaxloss.ops.distillation import (
    distillation_divergence,
    distillation_divergence_autodiff,
    topk_distillation_divergence,
)

# --- linear cross-entropy ---
from jaxloss.ops.linear_cross_entropy import (
    LinearCrossEntropyAux,
    causal_lm_shift,
    default_block_size,
    default_token_block_size,
    linear_cross_entropy,
    linear_cross_entropy_jvp,
)
from jaxloss.ops.metric_learning import (
    cosine_embedding_loss,
    hinge_embedding_loss,
    ntxent,
    pairwise_distance,
    power_distance,
    triplet_margin_loss,
)
from jaxloss.ops.rnnt import rnnt_loss, rnnt_loss_autodiff

__all__: list[str] = [
    # cross-entropy
    "sigmoid_binary_cross_entropy",
    "sigmoid_binary_cross_entropy_jvp",
    "softmax_cross_entropy",
    "softmax_cross_entropy_jvp",
    "sparse_softmax_cross_entropy",
    "sparse_softmax_cross_entropy_jvp",
    # CTC
    "CTCAlignment",
    "ctc_align",
    "ctc_beam_search_decode",
    "ctc_forward_variables",
    "ctc_greedy_decode",
    "ctc_loss",
    "ctc_loss_jvp",
    "rnnt_loss",
    "rnnt_loss_autodiff",
    # linear cross-entropy
    "LinearCrossEntropyAux",
    "causal_lm_shift",
    "default_block_size",
    "default_token_block_size",
    "linear_cross_entropy",
    "linear_cross_entropy_jvp",
    # distillation
    "distillation_divergence",
    "distillation_divergence_autodiff",
    "topk_distillation_divergence",
    # metric learning and image-text contrastive
    "clip_loss",
    "cosine_embedding_loss",
    "hinge_embedding_loss",
    "ntxent",
    "pairwise_distance",
    "power_distance",
    "siglip_loss",
    "triplet_margin_loss",
]
