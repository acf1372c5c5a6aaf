"""MFM, the Meta Feature Modulator (Wang et al. 2020, arXiv 2008.03428), as this kit reads it.

The paper's full text is not at hand; this is the reading implemented here:

- **Modulation.** Learnable per-channel scale γ (init 1) and shift β (init 0) act on chosen
  intermediate features of the classifier: ``h ← γ ⊙ h + β``, broadcast over H×W. They sit
  after every residual/conv block (``where="blocks"``), after every stage (``"stages"``), on the
  pooled feature that enters the linear head (``"fc"``), or any mix (``"blocks+fc"``, a list).
  At γ = 1, β = 0 the network computes exactly what it computed without them.
- **Mode 1, ``method="mfm"``.** γ, β are meta-parameters φ. The classifier θ trains on the
  long-tailed set; φ is updated by the one-step look-ahead on a small clean, *balanced* meta
  set: θ'(φ) = θ − α ∇θ L_train(θ; φ), then φ ← Adam step on ∇φ L_meta(θ'(φ); φ). φ enters
  the forward pass of both the virtual step and the meta loss (`metakit.meta.MetaStep` with
  a learner whose ``enters = "forward"``). The classifier's optimiser never touches φ.
- **When φ learns** (this kit's choice, from the digits-LT ablation in scripts/mfm_tuning.md).
  Meta-learned from the first step, γ/β never beat cross-entropy: while θ still moves fast,
  the real step re-fits the head around whatever φ does. So θ first trains alone through the
  identity modulation (plain steps); meta-learning starts at ``meta_start`` (default: the
  last 10% of the epochs, when the LR schedule has nearly settled θ), with the meta forward
  in eval mode (running BatchNorm statistics, as at test time); ``meta_steps`` meta-updates
  per iteration (default 1) are optional. ``meta_start=0, meta_mode="train"`` is the plain
  from-the-start reading.
- **Mode 2, ``method="mfm_net"``.** A small modulator network per modulated layer maps the
  layer's per-sample channel statistics (means and stds over H×W, (B, 2C)) to per-sample
  (γ, β); its weights are φ, meta-learned as in mode 1. Its last layer starts at zero, so it
  starts at the identity. With ``shared=True`` one small MLP serves every channel (each reads
  its own mean and std and the layer's averages), so the weights fit any width. Once learned it
  is saved (weights + metadata) and **transferred**: a fresh classifier of the same model (a
  shared modulator: of any width) trains on another long-tailed set with the modulator frozen
  (plain steps, no meta set needed) or fine-tuned (meta-steps continue). A loaded modulator acts
  from ``meta_start`` on, where a fresh one would start learning (identity before).
- **With logit adjustment** (``options={"logit_adj": True}``): the training loss becomes
  cross-entropy of ``logits + log π`` (π the training class prior, Menon et al. 2021), while
  the meta loss stays plain cross-entropy on the balanced meta set.

Modules: `layers` (the two layer kinds), `attach` (hooks, `attach` / `detach`), `store`
(save/load with metadata). Ablations go through `metakit.experiments.sweep.ablate`. The training
methods are in `metakit.methods.mfm`.

Example:
    >>> from metakit.models import build_model
    >>> net = build_model("digits_cnn", 10, (1, 8, 8))
    >>> mod = attach(net, "blocks+fc")
    >>> sorted(n for n, _ in net.named_parameters() if n.startswith("modulation"))[:2]
    ['modulation.layers.block1.beta', 'modulation.layers.block1.gamma']
"""
from metakit.learners.modulation.attach import (WHERE, Modulation, attach, detach, infer_channels, modulation_of,
                                       resolve_where, scale_shift_table)
from metakit.learners.modulation.layers import FeatureModulation, ModulatorNet, SharedModulatorNet, feature_stats
from metakit.learners.modulation.store import load_modulator, read_metadata, save_modulator

__all__ = ["WHERE", "FeatureModulation", "Modulation", "ModulatorNet", "SharedModulatorNet", "attach", "detach", "feature_stats",
           "infer_channels", "load_modulator", "modulation_of", "read_metadata", "resolve_where",
           "save_modulator", "scale_shift_table"]
