import numpy as np
import torch

from metakit.data.batches import Batches, crop_flip, random_crop, random_flip


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


def _slice_reference(x, pad, flip, seed):
    """The crop (and flip) drawn image by image with slicing: an independent computation."""
    g = torch.Generator().manual_seed(seed)
    b, _, h, w = x.shape
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    mirror = torch.rand(b, generator=g) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    out = [padded[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(b)]
    return torch.stack([o.flip(-1) if m else o for o, m in zip(out, mirror)])


def test_fused_crop_flip_equals_per_image_slicing():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    for pad, flip in ((4, True), (1, False), (0, True)):
        got = crop_flip(x, pad, flip, torch.Generator().manual_seed(3))
        assert torch.equal(got, _slice_reference(x, pad, flip, 3))


def test_crop_flip_equals_crop_then_flip():
    x = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    g = torch.Generator().manual_seed(5)
    two_steps = random_flip(random_crop(x, 4, g), g)
    assert torch.equal(crop_flip(x, 4, True, torch.Generator().manual_seed(5)), two_steps)


def test_augmented_batches_are_normalised_crops_of_the_pool():
    x = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    for b in Batches(x, np.zeros(20), 8, torch.device("cpu"), mean, std, augment="crop_flip", seed=1):
        pixels = b.x * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
        restored = torch.round(pixels * 255)
        assert torch.allclose(pixels * 255, restored, atol=1e-3)
        padded = torch.nn.functional.pad(x[b.index], (4, 4, 4, 4)).float()
        for img, src in zip(restored, padded):
            windows = [src[:, dy:dy + 8, dx:dx + 8] for dy in range(9) for dx in range(9)]
            assert any(torch.equal(img, win) or torch.equal(img, win.flip(-1)) for win in windows)


def test_same_seed_same_batches_and_different_seed_differs():
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    y = np.arange(50) % 5

    def epochs(seed):
        b = Batches(x, y, 16, torch.device("cpu"), (0.5,) * 3, (0.25,) * 3, augment="crop_flip", seed=seed)
        return [(batch.x, batch.y, batch.index) for _ in range(2) for batch in b]

    first, again, other = epochs(7), epochs(7), epochs(8)
    assert all(torch.equal(a, b) for one, two in zip(first, again) for a, b in zip(one, two))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other))
    assert not torch.equal(first[0][0], first[4][0])  # the second epoch is a new draw, not a replay


def test_digits_shift_moves_at_most_one_pixel_without_flipping():
    x = torch.zeros(200, 1, 8, 8, dtype=torch.uint8)
    x[:, 0, 3, 2] = 255  # one bright pixel at row 3, column 2
    b = Batches(x, np.zeros(200), 200, torch.device("cpu"), (0.0,), (1.0,), augment="shift", seed=0)
    rows, cols = torch.nonzero(next(iter(b)).x[:, 0] > 0.5, as_tuple=True)[1:]
    assert set(rows.tolist()) == {2, 3, 4} and set(cols.tolist()) == {1, 2, 3}
