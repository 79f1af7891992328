"""jaxloss: the Keras 3 losses API as pure JAX, with hand-written gradients on the hot paths.

Function handles (``jaxloss.mean_squared_error``) return unreduced per-sample losses; class handles
(``jaxloss.MeanSquaredError()``) are frozen dataclasses that add reduction, sample weighting, a
compute dtype and a config round trip. Low-level kernels live in :mod:`jaxloss.ops`.
"""

from jaxloss import ops
from jaxloss._loss import Loss, LossFunctionWrapper, LossSums
from jaxloss._reduction import Reduction, reduce_weighted_values
from jaxloss._registry import deserialize, get, serialize

from jaxloss._regression import (
    MAE,
    MAPE,
    MSE,
    MSLE,
    CosineSimilarity,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    cosine_proximity,
    cosine_similarity,
    huber,
    huber_loss,
    log_cosh,
    logcosh,
    mae,
    mape,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    mse,
    msle,
)
from jaxloss._segmentation import Dice, Tversky, dice, tversky
from jaxloss._hinge import (
    CategoricalHinge,
    Hinge,
    SquaredHinge,
    categorical_hinge,
    hinge,
    squared_hinge,
)

from jaxloss._crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalGeneralizedCrossEntropy,
    SparseCategoricalCrossentropy,
    bce,
    binary_crossentropy,
    categorical_crossentropy,
    categorical_generalized_cross_entropy,
    sparse_categorical_crossentropy,
)
from jaxloss._focal import (
    BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy,
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
)
from jaxloss._likelihood import (
    KLD,
    KLDivergence,
    Poisson,
    kl_divergence,
    kld,
    kullback_leibler_divergence,
    poisson,
)
# --- metric learning (in-batch and explicit pairs), image-text contrastive ---
from jaxloss._contrastive import (
    ClipLoss,
    SigLipLoss,
    clip_loss,
    siglip_loss,
)
from jaxloss._embedding_pairs import (
    CosineEmbedding,
    HingeEmbedding,
    TripletMargin,
    cosine_embedding,
    hinge_embedding,
    triplet_margin,
)
from jaxloss._metric_learning import (
    Circle,
    Contrastive,
    LiftedStruct,
    NTXent,
    Npairs,
    NpairsMultilabel,
    TripletHard,
    TripletSemiHard,
    circle,
    contrastive,
    lifted_struct,
    npairs,
    npairs_multilabel,
    ntxent,
    triplet_hard,
    triplet_semihard,
)
from jaxloss._sequence import CTC, ctc
from jaxloss._language_model import LinearCrossEntropy, linear_crossentropy
from jaxloss._utils import to_categorical

# --- ranking, segmentation (smoothed and generalized Dice), boxes, ordinal, sequence labelling ---
from jaxloss._ranking import (
    ListMLE,
    MarginRanking,
    PairwiseHinge,
    PairwiseLogistic,
    RankingSoftmax,
    list_mle,
    margin_ranking,
    pairwise_hinge,
    pairwise_logistic,
    ranking_softmax,
)
from jaxloss._segmentation import BinaryDice, GeneralizedDice, binary_dice, generalized_dice
from jaxloss._boxes import CIoU, DIoU, GIoU, IoU, ciou, diou, giou, iou
from jaxloss._ordinal import WeightedKappa, weighted_kappa
from jaxloss._structured import (
    LinearChainCRF,
    SequenceLoss,
    crf_decode,
    crf_log_likelihood,
    linear_chain_crf,
    sequence_loss,
)

# --- post-training: distillation ---
from jaxloss._distillation import KnowledgeDistillation, knowledge_distillation

__version__ = "0.2.0"

__all__ = [
    # core
    "Loss",
    "LossFunctionWrapper",
    "LossSums",
    "Reduction",
    "deserialize",
    "get",
    "ops",
    "reduce_weighted_values",
    "serialize",
    # regression, segmentation
    "CosineSimilarity",
    "Dice",
    "Huber",
    "LogCosh",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Tversky",
    "cosine_similarity",
    "dice",
    "huber",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "tversky",
    # hinge
    "CategoricalHinge",
    "Hinge",
    "SquaredHinge",
    "categorical_hinge",
    "hinge",
    "squared_hinge",
    # Keras 1/2 names
    "MAE",
    "MAPE",
    "MSE",
    "MSLE",
    "cosine_proximity",
    "huber_loss",
    "logcosh",
    "mae",
    "mape",
    "mse",
    "msle",
    # cross-entropy, focal, likelihood, metric learning, sequence, language model
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy",
    "KLDivergence",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy",
    "kl_divergence",
    "poisson",
    "sparse_categorical_crossentropy",
    "KLD",
    "bce",
    "kld",
    "kullback_leibler_divergence",
    "to_categorical",
    "CTC",
    "ctc",
    "LinearCrossEntropy",
    "linear_crossentropy",
    # ranking, smoothed and generalized Dice, boxes, ordinal, sequence labelling
    "ListMLE",
    "MarginRanking",
    "PairwiseHinge",
    "PairwiseLogistic",
    "RankingSoftmax",
    "list_mle",
    "margin_ranking",
    "pairwise_hinge",
    "pairwise_logistic",
    "ranking_softmax",
    "BinaryDice",
    "GeneralizedDice",
    "binary_dice",
    "generalized_dice",
    "CIoU",
    "DIoU",
    "GIoU",
    "IoU",
    "ciou",
    "diou",
    "giou",
    "iou",
    "WeightedKappa",
    "weighted_kappa",
    "LinearChainCRF",
    "SequenceLoss",
    "crf_decode",
    "crf_log_likelihood",
    "linear_chain_crf",
    "sequence_loss",
    # post-training: distillation
    "KnowledgeDistillation",
    "knowledge_distillation",
    # metric learning (in-batch and explicit pairs), image-text contrastive
    "Circle",
    "Contrastive",
    "LiftedStruct",
    "NTXent",
    "Npairs",
    "NpairsMultilabel",
    "TripletHard",
    "TripletSemiHard",
    "circle",
    "contrastive",
    "lifted_struct",
    "npairs",
    "npairs_multilabel",
    "ntxent",
    "triplet_hard",
    "triplet_semihard",
    "CosineEmbedding",
    "HingeEmbedding",
    "TripletMargin",
    "cosine_embedding",
    "hinge_embedding",
    "triplet_margin",
    "ClipLoss",
    "SigLipLoss",
    "clip_loss",
    "siglip_loss",
]
