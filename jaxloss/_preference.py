"""Preference-optimisation losses on per-sequence log-probabilities of a policy and a reference.

Pairwise losses (DPO, robust DPO, IPO, SLiC hinge, SimPO, ORPO)::

    y_pred = policy log-probabilities    [..., 2]   (chosen, rejected)
    y_true = reference log-probabilities [..., 2]   (chosen, rejected); None for SimPO and ORPO

one loss per pair, ``[...]``. The reference model is the target the policy is measured against, so
it sits in ``y_true`` and gets no gradient from the class handle's usual use. SimPO and ORPO need
no reference and use length-normalised log-probabilities: pass ``lengths=`` ``[..., 2]`` at call
time (or averages directly). KTO is unpaired: ``y_true`` is the desirable (1) / undesirable (0)
label of each completion and ``y_pred[..., :]`` is ``(policy, reference, policy_kl,
reference_kl)``, the last two the log-probabilities of a mismatched completion for the same prompt
(the reference-point KL estimate).

Every function takes ``return_metrics=True`` to also return what trainers log (the rewards, their
margin and the reward accuracy); every class has a ``metrics(y_true, y_pred)`` method.
:func:`sequence_log_probs` turns logits, or the ``(hidden, weight)`` of a language-model head
(never building ``[tokens, vocab]`` logits), into the per-sequence sums these losses take.

>>> import jax.numpy as jnp, jaxloss
>>> policy = jnp.array([[-10.0, -12.0]])      # log p(chosen), log p(rejected)
>>> reference = jnp.array([[-11.0, -11.0]])
>>> print(f"{float(jaxloss.DPO(beta=0.5)(reference, policy)):.4f}")  # -log sigmoid(0.5 * 2)
0.3133
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option
from jaxloss.ops import linear_cross_entropy, sparse_softmax_cross_entropy

HALF_OPEN = c.Check(c.is_real, "a float in [0, 0.5)", float, lambda x: 0.0 <= x < 0.5)
FINITE = c.Check(c.is_real, "a finite float", float, math.isfinite)
NLL_AVERAGE = c.one_of("tokens", "sequences")
# Log-probabilities closer to 0 than this are clamped in ORPO's log(1 - p): p = 1 has no odds.
_ORPO_CLAMP = -1e-6

Metrics = dict[str, jax.Array]


def _pair(name: str, arg: str, x: ArrayLike, width: int = 2) -> jax.Array:
    x = c.as_float(x, loss=name, arg=arg)
    if x.ndim < 1 or x.shape[-1] != width:
        what = (
            "(chosen, rejected)" if width == 2 else "(policy, reference, policy_kl, reference_kl)"
        )
        raise ValueError(
            f"{name}: `{arg}` must have shape [..., {width}] holding {what} log-probabilities; "
            f"got shape {tuple(x.shape)}."
        )
    return x


def _paired(name: str, y_true: ArrayLike, y_pred: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """``(policy log-ratio margin h, chosen and rejected policy-reference log-ratios)``."""
    policy = _pair(name, "y_pred", y_pred)
    reference = _pair(name, "y_true", y_true).astype(policy.dtype)
    if reference.shape != policy.shape:
        raise ValueError(
            f"{name}: `y_true` (reference) and `y_pred` (policy) must have the same shape; got "
            f"{tuple(reference.shape)} and {tuple(policy.shape)}."
        )
    ratios = policy - reference
    return ratios[..., 0] - ratios[..., 1], ratios


def _lengths(name: str, lengths: ArrayLike | None, policy: jax.Array) -> jax.Array:
    """The completion lengths, broadcast to ``policy``'s shape and clamped at 1 (1 if ``None``)."""
    if lengths is None:
        return jnp.ones(policy.shape, policy.dtype)
    lengths = c.as_input_array(name, "lengths", lengths).astype(policy.dtype)
    if jnp.broadcast_shapes(lengths.shape, policy.shape) != policy.shape:
        raise ValueError(
            f"{name}: `lengths` must broadcast to `y_pred`'s shape {tuple(policy.shape)}; got "
            f"{tuple(lengths.shape)}."
        )
    return jnp.broadcast_to(jnp.maximum(lengths, 1.0), policy.shape)


def _averaged(name: str, y_pred: ArrayLike, lengths: ArrayLike | None) -> jax.Array:
    policy = _pair(name, "y_pred", y_pred)
    return policy if lengths is None else policy / _lengths(name, lengths, policy)


def _pair_metrics(chosen: jax.Array, rejected: jax.Array) -> Metrics:
    return {
        "chosen_rewards": chosen,
        "rejected_rewards": rejected,
        "reward_margins": chosen - rejected,
        "reward_accuracies": (chosen > rejected).astype(chosen.dtype),
    }


def _dpo_metrics(beta: float, ratios: jax.Array) -> Metrics:
    rewards = lax.stop_gradient(beta * ratios)
    return _pair_metrics(rewards[..., 0], rewards[..., 1])


def _out(loss: jax.Array, metrics: Metrics, return_metrics: bool) -> Any:
    return (loss, metrics) if return_metrics else loss


def dpo(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    *,
    return_metrics: bool = False,
) -> Any:
    """Direct preference optimisation (Rafailov et al., 2023); conservative DPO with smoothing.

    With ``h = (pi_c - pi_r) - (ref_c - ref_r)`` (policy minus reference log-ratio margin)::

        loss = -(1 - eps) * log sigmoid(beta * h) - eps * log sigmoid(-beta * h)

    ``eps = label_smoothing`` is conservative DPO (cDPO, Mitchell 2023; Chowdhury et al. 2024):
    each preference label is taken to be flipped with probability ``eps``.

    Args:
      y_true: reference log-probabilities ``[..., 2]`` (chosen, rejected).
      y_pred: policy log-probabilities ``[..., 2]`` (chosen, rejected).
      beta: ``> 0``, the strength of the KL regularisation toward the reference.
      label_smoothing: ``eps`` in ``[0, 1]``.
      return_metrics: also return a dict of per-pair ``chosen_rewards = beta * (pi_c - ref_c)``,
        ``rejected_rewards``, ``reward_margins`` and ``reward_accuracies`` (1.0 where the chosen
        reward is larger), with no gradient.

    Returns:
      The per-pair loss ``[...]`` (and the metrics dict).

    Raises:
      TypeError / ValueError: options of the wrong kind or out of range; shapes not ``[..., 2]``.

    Notes:
      Uses ``log_sigmoid``: finite values and gradients for any margin (``beta * h = +-1e4``
      included). Equal chosen and rejected give ``log 2``.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Log-probabilities are not checked to be <= 0.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy, reference = jnp.array([[-10.0, -12.0]]), jnp.array([[-11.0, -11.0]])
      >>> loss, m = jaxloss.dpo(reference, policy, beta=0.5, return_metrics=True)
      >>> print(loss.round(4), m["reward_margins"], m["reward_accuracies"])
      [0.3133] [1.] [1.]
    """
    beta = c.check_option("dpo", "beta", beta, c.POSITIVE)
    eps = c.check_option("dpo", "label_smoothing", label_smoothing, c.UNIT_INTERVAL)
    h, ratios = _paired("dpo", y_true, y_pred)
    z = beta * h
    loss = -(1.0 - eps) * jax.nn.log_sigmoid(z) - eps * jax.nn.log_sigmoid(-z)
    return _out(loss, _dpo_metrics(beta, ratios), return_metrics)


def robust_dpo(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
    *,
    return_metrics: bool = False,
) -> Any:
    """Robust DPO (Chowdhury et al., 2024): an unbiased loss under preference-label noise ``eps``.

    ``loss = (-(1 - eps) log sigmoid(beta h) + eps log sigmoid(-beta h)) / (1 - 2 eps)``, with
    ``h`` as in :func:`dpo`. Its expectation over labels flipped with probability ``eps`` is the
    clean DPO loss.

    Args:
      y_true, y_pred, beta, return_metrics: as for :func:`dpo`.
      label_smoothing: the noise rate ``eps`` in ``[0, 0.5)``.

    Returns:
      The per-pair loss ``[...]`` (and the metrics dict of :func:`dpo`).

    Raises:
      TypeError / ValueError: options of the wrong kind or out of range; shapes not ``[..., 2]``.

    Notes:
      Unlike DPO it can be negative (the ``+eps`` term); finite for any margin.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Log-probabilities are not checked to be <= 0.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy, reference = jnp.array([[-10.0, -12.0]]), jnp.array([[-11.0, -11.0]])
      >>> print(jaxloss.robust_dpo(reference, policy, beta=0.5, label_smoothing=0.1).round(4))
      [0.1883]
    """
    beta = c.check_option("robust_dpo", "beta", beta, c.POSITIVE)
    eps = c.check_option("robust_dpo", "label_smoothing", label_smoothing, HALF_OPEN)
    h, ratios = _paired("robust_dpo", y_true, y_pred)
    z = beta * h
    loss = (-(1.0 - eps) * jax.nn.log_sigmoid(z) + eps * jax.nn.log_sigmoid(-z)) / (1.0 - 2 * eps)
    return _out(loss, _dpo_metrics(beta, ratios), return_metrics)


def ipo(
    y_true: ArrayLike, y_pred: ArrayLike, beta: float = 0.1, *, return_metrics: bool = False
) -> Any:
    """Identity preference optimisation (Azar et al., 2024): ``loss = (h - 1 / (2 beta)) ** 2``.

    ``h`` as in :func:`dpo`; ``beta`` is the paper's ``tau``. TRL computes IPO on length-averaged
    log-probabilities: pass ``sequence_log_probs(..., average=True)`` for its convention.

    Args:
      y_true, y_pred, return_metrics: as for :func:`dpo`.
      beta: ``> 0``; the loss pulls the log-ratio margin toward ``1 / (2 beta)``.

    Returns:
      The per-pair loss ``[...]`` (and the metrics dict of :func:`dpo`).

    Raises:
      TypeError / ValueError: options of the wrong kind or out of range; shapes not ``[..., 2]``.

    Notes:
      A square, so finite for any finite margin (``1e8`` at ``h = 1e4``).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Log-probabilities are not checked to be <= 0.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy, reference = jnp.array([[-10.0, -12.0]]), jnp.array([[-11.0, -11.0]])
      >>> print(jaxloss.ipo(reference, policy, beta=0.5))  # (2 - 1) ** 2
      [1.]
    """
    beta = c.check_option("ipo", "beta", beta, c.POSITIVE)
    h, ratios = _paired("ipo", y_true, y_pred)
    loss = jnp.square(h - 1.0 / (2.0 * beta))
    return _out(loss, _dpo_metrics(beta, ratios), return_metrics)


def slic_hinge(
    y_true: ArrayLike, y_pred: ArrayLike, beta: float = 0.1, *, return_metrics: bool = False
) -> Any:
    """SLiC-HF's calibration hinge (Zhao et al., 2023) as in TRL: ``max(0, 1 - beta * h)``.

    ``h`` as in :func:`dpo` (TRL's ``loss_type="hinge"``; ``1 / beta`` is the margin ``delta``).

    Args:
      y_true, y_pred, return_metrics: as for :func:`dpo`.
      beta: ``> 0``.

    Returns:
      The per-pair loss ``[...]`` (and the metrics dict of :func:`dpo`).

    Raises:
      TypeError / ValueError: options of the wrong kind or out of range; shapes not ``[..., 2]``.

    Notes:
      The gradient is 0 once the margin exceeds ``1 / beta`` (and at the kink, as ``relu``'s).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Log-probabilities are not checked to be <= 0.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy, reference = jnp.array([[-10.0, -12.0]]), jnp.array([[-11.0, -11.0]])
      >>> print(jaxloss.slic_hinge(reference, policy, beta=0.25))  # 1 - 0.25 * 2
      [0.5]
    """
    beta = c.check_option("slic_hinge", "beta", beta, c.POSITIVE)
    h, ratios = _paired("slic_hinge", y_true, y_pred)
    loss = jax.nn.relu(1.0 - beta * h)
    return _out(loss, _dpo_metrics(beta, ratios), return_metrics)


def simpo(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    beta: float = 2.0,
    gamma: float = 0.5,
    *,
    lengths: ArrayLike | None = None,
    return_metrics: bool = False,
) -> Any:
    """SimPO (Meng et al., 2024): a length-normalised margin with no reference model.

    With ``a_c, a_r`` the chosen and rejected average log-probabilities (``y_pred / lengths``)::

        loss = -log sigmoid(beta * (a_c - a_r) - gamma)

    Args:
      y_true: ignored (SimPO has no reference model); pass ``None``.
      y_pred: policy log-probabilities ``[..., 2]``: sums with ``lengths``, else averages.
      beta: ``> 0`` (the paper uses 2.0 to 2.5).
      gamma: the target reward margin (the paper's ``gamma``, TRL's ``simpo_gamma``).
      lengths: call-time input ``[..., 2]``, completion lengths in tokens (clamped at 1).
      return_metrics: also return ``chosen_rewards = beta * a_c``, ``rejected_rewards``,
        ``reward_margins`` and ``reward_accuracies``.

    Returns:
      The per-pair loss ``[...]`` (and the metrics dict).

    Raises:
      TypeError / ValueError: options of the wrong kind or out of range; shapes not ``[..., 2]``.

    Notes:
      Finite values and gradients for any margin (``log_sigmoid``).

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. ``y_true`` is not read.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy, lengths = jnp.array([[-10.0, -24.0]]), jnp.array([[10, 12]])
      >>> print(jaxloss.simpo(None, policy, lengths=lengths).round(4))  # -log sig(2 - 0.5)
      [0.2014]
    """
    del y_true
    beta = c.check_option("simpo", "beta", beta, c.POSITIVE)
    gamma = c.check_option("simpo", "gamma", gamma, FINITE)
    avg = _averaged("simpo", y_pred, lengths)
    loss = -jax.nn.log_sigmoid(beta * (avg[..., 0] - avg[..., 1]) - gamma)
    rewards = lax.stop_gradient(beta * avg)
    return _out(loss, _pair_metrics(rewards[..., 0], rewards[..., 1]), return_metrics)


def _log_odds(avg: jax.Array) -> jax.Array:
    """``log(p / (1 - p))`` of ``p = exp(avg)``, with ``avg`` clamped below 0."""
    avg = jnp.minimum(avg, _ORPO_CLAMP)
    return avg - jnp.log(-jnp.expm1(avg))


def _global_mean(x: jax.Array, axis_name: Any) -> jax.Array:
    """Mean of every element of ``x``, over the whole batch across ``axis_name`` when given."""
    total, count = jnp.sum(x), jnp.asarray(x.size, x.dtype)
    if axis_name is not None:
        total, count = lax.psum((total, count), axis_name)
    return total / jnp.maximum(count, 1.0)


def orpo(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    beta: float = 0.1,
    nll_average: str = "tokens",
    *,
    lengths: ArrayLike | None = None,
    axis_name: Any = None,
    return_metrics: bool = False,
) -> Any:
    """ORPO (Hong et al., 2024): supervised NLL plus an odds-ratio preference term, no reference.

    With ``S_c`` the chosen sequence's log-probability sum, ``L_c`` its length in tokens,
    ``a_c = S_c / L_c`` and ``a_r`` the average log-probabilities and
    ``odds(a) = exp(a) / (1 - exp(a))``::

        loss = nll - beta * log sigmoid(log odds(a_c) - log odds(a_r))
        nll  = -S_c / mean(L_c)      nll_average="tokens"     (mean over the batch's pairs)
        nll  = -a_c                  nll_average="sequences"

    The paper's ``L_SFT`` is the causal language-modelling NLL of the chosen completions, which
    its code and TRL's ``ORPOTrainer`` average over every chosen token of the batch (long
    completions weigh more). With ``"tokens"`` the per-pair values are scaled so that their plain
    mean over the batch is exactly that token mean, ``sum(-S_c) / sum(L_c)``. ``"sequences"``
    averages each chosen completion first (every pair weighs the same).

    Args:
      y_true: ignored (ORPO has no reference model); pass ``None``.
      y_pred: policy log-probabilities ``[..., 2]``: sums with ``lengths``, else averages.
      beta: ``> 0``, the weight of the odds-ratio term (the paper's ``lambda``, TRL's ``beta``).
      nll_average: ``"tokens"`` (the paper's and TRL's mean over the batch's chosen tokens) or
        ``"sequences"`` (the mean of the chosen completions' own averages).
      lengths: call-time input ``[..., 2]``, completion lengths in tokens (clamped at 1).
      axis_name: inside ``shard_map``, the axis the pairs are split over: the mean chosen length
        of ``"tokens"`` is then the global batch's (the class handle passes its own).
      return_metrics: also return ``chosen_rewards = beta * a_c``, ``rejected_rewards``,
        ``reward_margins``, ``reward_accuracies``, ``log_odds_ratio`` and ``nll``.

    Returns:
      The per-pair loss ``[...]`` (and the metrics dict).

    Raises:
      TypeError / ValueError: options of the wrong kind or out of range; shapes not ``[..., 2]``.

    Notes:
      Without ``lengths`` the log-probabilities are taken as averages (``L = 1``) and both
      ``nll_average`` modes agree. Under a class handle's mean with sample weights, the
      ``"tokens"`` NLL is the weighted sum of the chosen token NLLs over the batch's unweighted
      chosen-token count (each pair's weight multiplies its tokens). Average log-probabilities
      above ``-1e-6`` (probabilities within ``1e-6`` of 1, whose odds are infinite) are clamped
      there, so the value and gradient stay finite.

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. ``y_true`` is not read.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy = jnp.array([[-0.5, -2.0]])
      >>> print(jaxloss.orpo(None, policy, beta=1.0).round(4))
      [0.5967]
      >>> sums, lengths = jnp.array([[-2.0, -6.0], [-3.0, -3.0]]), jnp.array([[1, 4], [3, 2]])
      >>> print(jaxloss.orpo(None, sums, lengths=lengths).round(4))  # NLL 2 / 2 and 3 / 2
      [1.1042 1.5401]
      >>> print(jaxloss.orpo(None, sums, lengths=lengths, nll_average="sequences").round(4))
      [2.1042 1.0401]
    """
    name = "orpo"
    beta = c.check_option(name, "beta", beta, c.POSITIVE)
    nll_average = c.check_option(name, "nll_average", nll_average, NLL_AVERAGE)
    axis_name = c.check_option(name, "axis_name", axis_name, c.AXIS_NAME)
    policy = _pair(name, "y_pred", y_pred)
    length = _lengths(name, lengths, policy)
    avg = policy / length
    log_odds = _log_odds(avg[..., 0]) - _log_odds(avg[..., 1])
    if nll_average == "tokens":
        mean_length = lax.stop_gradient(_global_mean(length[..., 0], axis_name))
        nll = -policy[..., 0] / mean_length
    else:
        nll = -avg[..., 0]
    loss = nll - beta * jax.nn.log_sigmoid(log_odds)
    rewards = lax.stop_gradient(beta * avg)
    metrics = _pair_metrics(rewards[..., 0], rewards[..., 1])
    metrics["log_odds_ratio"] = lax.stop_gradient(log_odds)
    metrics["nll"] = lax.stop_gradient(nll)
    return _out(loss, metrics, return_metrics)


def kto(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    *,
    axis_name: Any = None,
    return_metrics: bool = False,
) -> Any:
    """KTO (Ethayarajh et al., 2024): unpaired desirable / undesirable completions.

    With ``r = pi - ref`` the completion's log-ratio and the reference point
    ``z0 = max(0, mean(pi_kl - ref_kl))`` (an estimate of ``KL(pi || ref)`` over the whole batch
    from mismatched completions, with no gradient, as in the paper and TRL)::

        loss = desirable_weight   * (1 - sigmoid(beta * (r - z0)))    where y_true = 1
        loss = undesirable_weight * (1 - sigmoid(beta * (z0 - r)))    where y_true = 0

    Args:
      y_true: desirability ``[...]``: 1 (or True) desirable, 0 undesirable.
      y_pred: ``[..., 4]`` log-probabilities ``(policy, reference, policy_kl, reference_kl)``.
      beta: ``> 0``.
      desirable_weight, undesirable_weight: ``>= 0`` (the paper's ``lambda_D``, ``lambda_U``).
      axis_name: inside ``shard_map``, the axis the completions are split over: ``z0`` and the
        mean rewards are then the global batch's (the class handle passes its own).
      return_metrics: also return ``rewards = beta * r`` (per completion), ``kl`` (``z0``),
        ``chosen_rewards`` / ``rejected_rewards`` (mean reward of the desirable / undesirable
        completions, 0 if none), their ``reward_margins`` and ``reward_accuracies`` (per
        completion: 1.0 where the reward is on the label's side of the reference point).

    Returns:
      The per-completion loss ``[...]`` (and the metrics dict).

    Raises:
      TypeError / ValueError: options of the wrong kind or out of range; shapes mismatched.

    Notes:
      ``z0`` is the mean over every completion of the call (every leading axis), unweighted, and
      with ``axis_name`` over every device's completions (sums and counts ``psum``-ed, so
      uneven shards are weighted by their sizes), as TRL gathers it across processes. Without
      ``axis_name`` under ``shard_map`` it is the local batch's.

      Bad values: NaN in one sample's log-probabilities makes the loss NaN for every anchor that
      meets it (all of them: ``z0`` is a mean over the batch). ``y_true > 0.5`` is desirable,
      anything else (NaN included) undesirable.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_pred = jnp.array([[-10.0, -12.0, -20.0, -20.0], [-15.0, -12.0, -20.0, -20.0]])
      >>> print(jaxloss.kto(jnp.array([1, 0]), y_pred, beta=0.5).round(4))  # z0 = 0
      [0.2689 0.1824]
    """
    name = "kto"
    beta = c.check_option(name, "beta", beta, c.POSITIVE)
    w_d = c.check_option(name, "desirable_weight", desirable_weight, c.NON_NEGATIVE)
    w_u = c.check_option(name, "undesirable_weight", undesirable_weight, c.NON_NEGATIVE)
    axis_name = c.check_option(name, "axis_name", axis_name, c.AXIS_NAME)
    x = _pair(name, "y_pred", y_pred, width=4)
    label = c.as_input_array(name, "y_true", y_true)
    if label.shape != x.shape[:-1]:
        raise ValueError(
            f"{name}: `y_true` (desirability) must have `y_pred`'s shape without its last axis, "
            f"{tuple(x.shape[:-1])}; got {tuple(label.shape)}."
        )
    desirable = label > 0.5
    r = x[..., 0] - x[..., 1]
    z0 = lax.stop_gradient(jnp.maximum(_global_mean(x[..., 2] - x[..., 3], axis_name), 0.0))
    loss = jnp.where(
        desirable,
        w_d * (1.0 - jax.nn.sigmoid(beta * (r - z0))),
        w_u * (1.0 - jax.nn.sigmoid(beta * (z0 - r))),
    )
    rewards = lax.stop_gradient(beta * r)
    sums = (
        jnp.sum(jnp.where(desirable, rewards, 0.0)),
        jnp.sum(jnp.where(desirable, 0.0, rewards)),
        jnp.sum(desirable, dtype=rewards.dtype),
        jnp.asarray(desirable.size, rewards.dtype),
    )
    if axis_name is not None:
        sums = lax.psum(sums, axis_name)
    sum_d, sum_u, n_d, n = sums
    chosen = sum_d / jnp.maximum(n_d, 1.0)
    rejected = sum_u / jnp.maximum(n - n_d, 1.0)
    metrics = {
        "rewards": rewards,
        "kl": z0,
        "chosen_rewards": chosen,
        "rejected_rewards": rejected,
        "reward_margins": chosen - rejected,
        "reward_accuracies": ((r > z0) == desirable).astype(rewards.dtype),
    }
    return _out(loss, metrics, return_metrics)


class _Preference(Loss):
    """Adds :meth:`metrics` to the preference class handles (not registered)."""

    # Losses whose per-sample value uses a batch statistic take the class's axis_name.
    _batch_statistic = False

    def _kwargs(self) -> dict[str, Any]:
        return {"axis_name": self.axis_name} if self._batch_statistic else {}

    def call(self, y_true: Any, y_pred: Any, **inputs: Any) -> jax.Array:
        return self.function(y_true, y_pred, **self.options(), **inputs, **self._kwargs())  # type: ignore[misc]

    def metrics(self, y_true: Any, y_pred: Any, **inputs: Any) -> Metrics:
        """What trainers log (see the function's ``return_metrics``), in the compute dtype."""
        y_true, y_pred = self.cast_inputs(y_true, y_pred)
        out = self.function(  # type: ignore[misc]
            y_true, y_pred, **self.options(), **inputs, **self._kwargs(), return_metrics=True
        )
        return out[1]


class _ReferenceFree(_Preference):
    """SimPO and ORPO take ``y_true=None`` (not registered)."""

    def cast_inputs(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        if y_true is None:
            return None, super().cast_inputs(jnp.zeros(()), y_pred)[1]
        return super().cast_inputs(y_true, y_pred)


class DPO(_Preference, Loss, function=dpo, inputs="preference"):
    """Class handle of :func:`dpo`: ``loss(reference_logps, policy_logps)``, both ``[batch, 2]``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy = jnp.array([[-10.0, -12.0], [-9.0, -8.0]])
      >>> reference = jnp.array([[-11.0, -11.0], [-9.0, -9.0]])
      >>> loss = jaxloss.DPO(beta=0.5, label_smoothing=0.1)
      >>> print(f"{float(loss(reference, policy)):.4f}")
      0.6687
      >>> print(loss.metrics(reference, policy)["reward_accuracies"])
      [1. 0.]
    """

    beta: float = option(default=0.1, check=c.POSITIVE)
    label_smoothing: float = option(default=0.0, check=c.UNIT_INTERVAL)


class RobustDPO(_Preference, Loss, function=robust_dpo, inputs="preference"):
    """Class handle of :func:`robust_dpo`.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy, reference = jnp.array([[-10.0, -12.0]]), jnp.array([[-11.0, -11.0]])
      >>> print(f"{float(jaxloss.RobustDPO(beta=0.5)(reference, policy)):.4f}")
      0.1883
    """

    beta: float = option(default=0.1, check=c.POSITIVE)
    label_smoothing: float = option(default=0.1, check=HALF_OPEN)


class IPO(_Preference, Loss, function=ipo, inputs="preference"):
    """Class handle of :func:`ipo`.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy, reference = jnp.array([[-10.0, -12.0]]), jnp.array([[-11.0, -11.0]])
      >>> print(f"{float(jaxloss.IPO(beta=0.5)(reference, policy)):.4f}")
      1.0000
    """

    beta: float = option(default=0.1, check=c.POSITIVE)


class SlicHinge(_Preference, Loss, function=slic_hinge, inputs="preference"):
    """Class handle of :func:`slic_hinge`.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy, reference = jnp.array([[-10.0, -12.0]]), jnp.array([[-11.0, -11.0]])
      >>> print(f"{float(jaxloss.SlicHinge(beta=0.25)(reference, policy)):.4f}")
      0.5000
    """

    beta: float = option(default=0.1, check=c.POSITIVE)


class SimPO(_ReferenceFree, Loss, function=simpo, inputs="preference"):
    """Class handle of :func:`simpo`: ``loss(None, policy_logps, lengths=lengths)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> policy, lengths = jnp.array([[-10.0, -24.0]]), jnp.array([[10, 12]])
      >>> print(f"{float(jaxloss.SimPO()(None, policy, lengths=lengths)):.4f}")
      0.2014
    """

    beta: float = option(default=2.0, check=c.POSITIVE)
    gamma: float = option(default=0.5, check=FINITE)


class ORPO(_ReferenceFree, Loss, function=orpo, inputs="preference"):
    """Class handle of :func:`orpo`: ``loss(None, policy_logps, lengths=lengths)``.

    With ``axis_name`` inside ``shard_map`` the ``"tokens"`` NLL divides by the global batch's
    mean chosen length, so the value is the global batch's.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> print(f"{float(jaxloss.ORPO(beta=1.0)(None, jnp.array([[-0.5, -2.0]]))):.4f}")
      0.5967
    """

    _batch_statistic = True
    beta: float = option(default=0.1, check=c.POSITIVE)
    nll_average: str = option(default="tokens", check=NLL_AVERAGE)


class KTO(_Preference, Loss, function=kto, inputs="kto"):
    """Class handle of :func:`kto`: ``loss(desirable, logps)`` with ``logps`` ``[batch, 4]``.

    With ``axis_name`` inside ``shard_map`` the reference point ``z0`` is the global batch's KL
    estimate, so the value and gradient are those of the global batch.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_pred = jnp.array([[-10.0, -12.0, -20.0, -20.0], [-15.0, -12.0, -20.0, -20.0]])
      >>> loss = jaxloss.KTO(beta=0.5, undesirable_weight=2.0)
      >>> print(f"{float(loss(jnp.array([1, 0]), y_pred)):.4f}")  # (0.2689 + 2 * 0.1824) / 2
      0.3168
    """

    _batch_statistic = True
    beta: float = option(default=0.1, check=c.POSITIVE)
    desirable_weight: float = option(default=1.0, check=c.NON_NEGATIVE)
    undesirable_weight: float = option(default=1.0, check=c.NON_NEGATIVE)


def sequence_log_probs(
    logits: ArrayLike | Sequence[ArrayLike],
    labels: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    ignore_index: int | None = None,
    average: bool = False,
    block_size: int | None = None,
) -> jax.Array:
    """Per-sequence sum (or mean) of the labels' log-probabilities, the input of the losses above.

    ``out[b] = sum_t valid[b, t] * log softmax(logits[b, t])[labels[b, t]]`` (divided by the
    number of valid tokens with ``average``), where ``valid`` is ``mask`` and
    ``labels != ignore_index``.

    Args:
      logits: ``[..., T, V]`` logits, or the language-model head ``(hidden, weight)`` /
        ``(hidden, weight, bias)`` with ``hidden [..., T, D]``, ``weight [D, V]``: the
        log-probabilities then come from :func:`jaxloss.ops.linear_cross_entropy`'s auxiliary
        ``label_logprob``, which never builds the ``[tokens, V]`` logits.
      labels: integer ``[..., T]``, the completion's tokens (already shifted to line up with the
        logits that predict them).
      mask: optional boolean ``[..., T]`` (e.g. the completion without the prompt and padding).
      ignore_index: label value of tokens to leave out (e.g. ``-100``).
      average: divide by the number of valid tokens (SimPO, ORPO, TRL's IPO).
      block_size: vocabulary block of the fused head (``None``: its default).

    Returns:
      ``[...]``, float32 (float64 for float64 inputs). A sequence with no valid token gets 0 and
      a zero gradient.

    Raises:
      TypeError: non-integer labels, a non-boolean mask, a head that is not a 2- or 3-tuple.
      ValueError: mismatched shapes.

    Notes:
      Masked tokens contribute exactly 0 and no gradient, even if their label is out of range.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> logits = jnp.log(jnp.array([[[0.5, 0.5], [0.25, 0.75], [0.9, 0.1]]]))
      >>> labels, mask = jnp.array([[0, 1, -100]]), jnp.array([[True, True, False]])
      >>> print(jaxloss.sequence_log_probs(logits, labels, mask=mask))  # log .5 + log .75
      [-0.98082924]
      >>> hidden, weight = jnp.eye(2)[None, :, :], jnp.log(jnp.array([[0.5, 0.5], [0.25, 0.75]]))
      >>> print(jaxloss.sequence_log_probs((hidden, weight), labels[:, :2], average=True))
      [-0.49041462]
    """
    name = "sequence_log_probs"
    labels = c.as_input_array(name, "labels", labels)
    c.check_integer(name, "labels", labels)
    valid = jnp.ones(labels.shape, bool)
    if mask is not None:
        mask = c.as_input_array(name, "mask", mask)
        if mask.dtype != jnp.bool_:
            raise TypeError(f"{name}: `mask` must be a boolean array; got dtype {mask.dtype}.")
        if jnp.broadcast_shapes(mask.shape, labels.shape) != labels.shape:
            raise ValueError(
                f"{name}: `mask` must broadcast to `labels`' shape {tuple(labels.shape)}; got "
                f"{tuple(mask.shape)}."
            )
        valid = valid & mask
    if ignore_index is not None:
        ignore_index = c.check_option(name, "ignore_index", ignore_index, c.INT)
        valid = valid & (labels != ignore_index)
    if not isinstance(average, (bool,)):
        raise TypeError(f"{name}: `average` must be True or False; got {average!r}.")
    # Invalid tokens get the kernels' ignore_index: exactly 0 and no gradient, whatever they hold.
    skip = -1
    safe = jnp.where(valid, labels, skip).astype(jnp.int32)
    if isinstance(logits, (tuple, list)):
        if len(logits) not in (2, 3):
            raise TypeError(
                f"{name}: `logits` must be an array or a tuple (hidden, weight[, bias]); got a "
                f"{type(logits).__name__} of length {len(logits)}."
            )
        hidden, weight, *rest = logits
        # The head's auxiliary label log-probability comes from the same streaming pass (0 for
        # the skipped tokens); the loss itself is not needed.
        _, aux = linear_cross_entropy(
            hidden,
            weight,
            safe,
            bias=rest[0] if rest else None,
            ignore_index=skip,
            block_size=block_size,
            return_aux=True,
            # Only the auxiliary output is differentiated: "in_forward"'s forward-time gradients
            # would go unused and its backward recompute anyway.
            strategy="recompute",
        )
        token_logps = aux.label_logprob
    else:
        logits = c.as_float(logits, loss=name, arg="logits")
        if tuple(logits.shape[:-1]) != tuple(labels.shape):
            raise ValueError(
                f"{name}: `logits` must have shape [*labels.shape, V] = "
                f"{(*labels.shape, 'V')}; got {tuple(logits.shape)}."
            )
        token_logps = -sparse_softmax_cross_entropy(logits, safe, ignore_index=skip)
    total = jnp.sum(token_logps, axis=-1)
    if not average:
        return total
    count = jnp.sum(valid, axis=-1).astype(total.dtype)
    return total / jnp.maximum(count, 1.0)
