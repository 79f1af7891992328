"""Drop-in faces: the loss functions of other libraries, same names, signatures and semantics.

* :mod:`jaxloss.compat.optax`: ``optax.losses`` (change ``from optax import losses`` to
  ``from jaxloss.compat import optax as losses``);
* :mod:`jaxloss.compat.torch`: the losses of ``torch.nn.functional`` on JAX arrays.

Each adapter only moves arguments around (axes, paddings to lengths, reductions) and calls a
jaxloss kernel (:mod:`jaxloss.ops`) or loss function; where the peer's behaviour is a defect, the
departure is stated in the adapter's docstring and in its module's docstring.

Neither face imports its peer library: ``jaxloss.compat.torch`` works without PyTorch installed.
"""
