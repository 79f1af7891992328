"""jaxloss: the Keras 3 losses API as pure JAX, with hand-written gradients on the hot paths.

Function handles (``jaxloss.mean_squared_error``) return unreduced per-sample losses; class handles
(``jaxloss.MeanSquaredError()``) are frozen dataclasses that add reduction, sample weighting, a
compute dtype and a config round trip. Low-level kernels live in :mod:`jaxloss.ops`.
"""

from jaxloss import ops
from jaxloss._loss import Loss, LossFunctionWrapper
from jaxloss._reduction import Reduction, reduce_weighted_values
from jaxloss._registry import deserialize, get, serialize

# --- regression family (foundation) ---
from jaxloss.regression import (
    MAE,
    MAPE,
    MSE,
    MSLE,
    CosineSimilarity,
    Dice,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Tversky,
    cosine_proximity,
    cosine_similarity,
    dice,
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
    tversky,
)

# --- hinge family (foundation) ---
from jaxloss.hinge import (
    CategoricalHinge,
    Hinge,
    SquaredHinge,
    categorical_hinge,
    hinge,
    squared_hinge,
)

# --- probabilistic family (issue 3) ---
from jaxloss.probabilistic import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy,
    Circle,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_generalized_cross_entropy,
    circle,
    kl_divergence,
    poisson,
    sparse_categorical_crossentropy,
)
from jaxloss.probabilistic import KLD, bce, kld, kullback_leibler_divergence
from jaxloss.utils import to_categorical

# --- CTC (issue 4) ---
from jaxloss.sequence import CTC, ctc

# --- linear cross-entropy (issue 6) ---
from jaxloss.language_model import LinearCrossEntropy, linear_crossentropy

__version__ = "0.1.0"

__all__ = [
    # core
    "Loss",
    "LossFunctionWrapper",
    "Reduction",
    "deserialize",
    "get",
    "ops",
    "reduce_weighted_values",
    "serialize",
    # regression
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
    # probabilistic (issue 3)
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy",
    "Circle",
    "KLDivergence",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy",
    "circle",
    "kl_divergence",
    "poisson",
    "sparse_categorical_crossentropy",
    "KLD",
    "bce",
    "kld",
    "kullback_leibler_divergence",
    "to_categorical",
    # CTC (issue 4)
    "CTC",
    "ctc",
    # linear cross-entropy (issue 6)
    "LinearCrossEntropy",
    "linear_crossentropy",
]
