"""The one mechanism: a one-step look-ahead on a small clean meta set.

With classifier weights θ, meta-parameters φ, a training batch and a meta batch:

1. virtual step   θ'(φ) = θ − α(φ) · ∇θ L_train(θ; φ)         (graph kept where needed)
2. meta loss      L_meta(θ'(φ)) on the meta batch, via ``torch.func.functional_call``
3. meta update    φ ← meta_optimizer step along ∇φ L_meta      (exact)
4. real step      θ ← optimizer step on L_train(θ; φ_new)

- `core`: `lookahead` (the small public core), `cloned_buffers`, `theta`, `MetaLearner`.
- `rules`: the four exact hypergradient rules (general double backward, reverse over forward
  "rof", lr, JVP).
- `norms`: normalisation as primitive ops, which keeps the rof rule exact through BatchNorm.
- `step`: `MetaStep`, the driver that picks the cheapest exact rule for ``learner.enters``.
- `cadence`: a count of meta-updates spread evenly over a run's steps.
"""
from metakit.meta.core import (ENTRIES, MetaLearner, cloned_buffers, cross_entropy_per_sample, freeze, lookahead,
                               normalize_weights, theta)
from metakit.meta.rules import Hypergradient, TrainForward
from metakit.meta.step import MetaStep, pick_rule

__all__ = ["ENTRIES", "MetaLearner", "MetaStep", "Hypergradient", "TrainForward", "cloned_buffers",
           "cross_entropy_per_sample", "freeze", "lookahead", "normalize_weights", "pick_rule", "theta"]
