import numpy as np
import torch

from metakit.data.batches import Batches, random_crop


def test_epoch_covers_every_image_once():
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    seen = torch.cat([b.index for b in Batches(x, np.arange(10), 3, torch.device("cpu"), (0.,), (1.,))])
    assert sorted(seen.tolist()) == list(range(10))


def test_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.randint(0, 255, (16, 3, 8, 8), dtype=torch.uint8)
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):
        assert any(torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8]) for dy in range(5) for dx in range(5))


def test_normalisation_and_labels_follow_images():
    x = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1) * 40
    y = np.arange(6) * 2
    for b in Batches(x, y, 4, torch.device("cpu"), (0.0,), (1.0,)):
        assert torch.allclose(b.x.flatten() * 255 / 40, b.y.float() / 2)


def test_weighted_sampling_follows_weights():
    y = np.array([0] * 90 + [1] * 10)
    w = np.where(y == 0, 1 / 90, 1 / 10)
    b = Batches(torch.zeros(100, 1, 1, 1, dtype=torch.uint8), y, 100, torch.device("cpu"), (0.,), (1.,),
                sample_weights=w, seed=0)
    drawn = torch.cat([batch.y for _ in range(20) for batch in b])
    assert abs(drawn.float().mean().item() - 0.5) < 0.05
