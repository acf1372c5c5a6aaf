"""MFM, the Meta Feature Modulator (Wang et al. 2020, arXiv 2008.03428), as this kit reads it.

Learnable per-channel scale γ (init 1) and shift β (init 0) act on chosen intermediate features,
``h ← γ ⊙ h + β`` broadcast over H×W: after every block (``where="blocks"``), every stage
(``"stages"``), on the pooled feature before the head (``"fc"``), or a mix (``"blocks+fc"``, a
list); at γ = 1, β = 0 the net computes exactly what it did without them. ``method="mfm"``
meta-learns γ, β as φ by the one-step look-ahead on a balanced meta set (φ enters the forward of
the virtual step and the meta loss), from ``meta_start`` on: θ trains alone before. With
``method="mfm_net"`` a small modulator network per layer maps the layer's per-sample channel
means and stds to per-sample (γ, β), starting at the identity; ``shared=True`` makes its weights
fit any width, and a saved modulator transfers to a fresh classifier, frozen or fine-tuned. Why φ
learns late, and the other reading choices: docs/guide/design_notes.md.

Modules: `layers` (the two layer kinds), `attach` (hooks), `store` (save/load with metadata);
ablations go through `metakit.studies.sweep.ablate`, the training methods are `metakit.methods.mfm`.

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
