"""How much a trained net memorised noisy labels: its predictions on the corrupted training images.

On a training image whose label the noise changed, a net that learned the task predicts the
true label; a net that memorised the noise predicts the (wrong) given label. Training accuracy
on the given labels mixes both; this splits them.
"""
from __future__ import annotations

import numpy as np
import torch

from metakit.data.batches import Batches
from metakit.data.sources import load_source


@torch.no_grad()
def noisy_label_fit(result) -> dict[str, float]:
    """Predictions of ``result.net`` (eval mode) on its own training images, in %.

    Args:
        result: a `metakit.experiments.Result` of a run with label noise.

    Returns:
        ``corrupted_given``: corrupted images predicted as their noisy label (memorisation);
        ``corrupted_true``: corrupted images predicted as their true label;
        ``clean_given``: uncorrupted images predicted correctly; ``corrupted_fraction``.

    Example:
        >>> from metakit.experiments import Config, run
        >>> r = run(Config(profile="smoke", epochs=1, noise_kind="uniform", noise_rate=0.4, progress=False))
        >>> sorted(noisy_label_fit(r))
        ['clean_given', 'corrupted_fraction', 'corrupted_given', 'corrupted_true']
    """
    config, split, net = result.config, result.split, result.net
    source = load_source(config.dataset, config.data_root, config.data_size, config.data_options)
    dev = next(net.parameters()).device
    batches = Batches(source.train_x[split.train_idx], split.train_labels, 500, dev, source.mean, source.std,
                      shuffle=False)
    was_training = net.training
    net.eval()
    predictions = torch.cat([net(b.x).argmax(1).cpu() for b in batches]).numpy()    # (N,)
    net.train(was_training)
    given, true = np.asarray(split.train_labels), np.asarray(split.clean_labels)
    corrupted = given != true

    def pct(mask: np.ndarray, labels: np.ndarray) -> float:
        return float(100.0 * np.mean(predictions[mask] == labels[mask])) if mask.any() else float("nan")

    return {"corrupted_given": pct(corrupted, given), "corrupted_true": pct(corrupted, true),
            "clean_given": pct(~corrupted, given), "corrupted_fraction": float(100.0 * corrupted.mean())}
