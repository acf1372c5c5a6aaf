"""The authors' snapshot files: their key layout loads into the meta-test cell, runs staged, and keeps provenance.

The tests write synthetic state dicts in the official layout (a fresh clone has no ../shared).
"""
import math

import pytest
import torch

from metakit.learners.lr_net import LRSnapshots, load_schedule
from metakit.learners.official import EPOCHS, import_official, load_official, official_keys
from metakit.probes.lr_net import output_by_loss, snapshot_output, stage_outputs
from metakit.schedules.learned import StagedSchedule


def official_state(seed, hidden=50):
    g = torch.Generator().manual_seed(seed)
    return {k: 0.3 * torch.randn(shape, generator=g) for k, shape in official_keys(hidden).items()}


def by_hand(state, losses, hidden=50):
    """The official meta-test network, written out: maps through hidden/2, gates (in, forget, transform, out)."""
    h, c, out = torch.zeros(1, hidden), torch.zeros(1, hidden), []
    lin = lambda x, p: x @ state[p + ".weight"].T + state[p + ".bias"]                      # noqa: E731
    for loss in losses:
        x = torch.tensor([[loss]])
        i2h = lin(torch.relu(lin(x, "layer1.fc_i2h.0")), "layer1.fc_i2h.2")
        h2h = lin(torch.relu(lin(h, "layer1.fc_h2h.0")), "layer1.fc_h2h.2")
        i, f, g, o = (i2h + h2h).split(hidden, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(float(torch.sigmoid(lin(h, "layer3"))))
    return out


def test_the_layout_is_the_official_one():
    keys = official_keys(50)
    assert keys["layer1.fc_i2h.0.weight"] == (25, 1) and keys["layer1.fc_h2h.0.weight"] == (25, 50)
    assert keys["layer1.fc_i2h.2.weight"] == (200, 25) and keys["layer3.weight"] == (1, 50) and len(keys) == 10


def test_a_loaded_snapshot_computes_what_the_official_network_computes():
    state = official_state(0)
    net = load_official([state] * 3).at_epoch(100)
    net.gamma.fill_(1.0)
    losses = [2.3, 1.7, 0.9, 0.4, 0.4]
    ours = []
    with torch.no_grad():
        for loss in losses:                                   # the official forward advances the state every call
            ours.append(float(net.inner_lr(torch.tensor(loss))))
            net.after_step(torch.tensor(loss))
    assert ours == pytest.approx(by_hand(state, losses), abs=1e-6)


def test_the_staged_meta_test_runs_the_three_files_at_n3_and_2n3(tmp_path):
    states = [official_state(s) for s in range(3)]
    paths = []
    for epoch, state in zip(EPOCHS, states):
        paths.append(tmp_path / f"mlr_snet {epoch}.pth")
        torch.save(state, paths[-1])
    saved = import_official(paths, tmp_path / "official.pt")
    snaps, meta = load_schedule(saved)
    assert isinstance(snaps, LRSnapshots) and snaps.epochs == EPOCHS and meta["epochs"] == list(EPOCHS)
    assert meta["files"] == ["mlr_snet 1.pth", "mlr_snet 100.pth", "mlr_snet 200.pth"] and len(meta["sha256"][0]) == 64
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    s = StagedSchedule(snaps, opt, iters_per_epoch=2, epochs=6, num_classes=10, full_loss=lambda: 2.3)
    [s.update(1.0) for _ in range(12)]
    assert [(w["epoch"], w["snapshot"]) for w in s.switches] == [(0, 1), (2, 100), (4, 200)]
    gamma = abs(math.sqrt(2.3) * math.log(2.3 * 10) / 10 ** 0.25 / 4)
    assert s.switches[0]["gamma"] == pytest.approx(gamma, rel=1e-12)


def test_a_file_of_another_layout_or_with_nan_is_refused_in_one_line(tmp_path):
    bad = official_state(0)
    bad.pop("layer3.bias")
    with pytest.raises(ValueError, match=r"not an official MLR-SNet meta-test state dict \(missing \['layer3.bias'\]"):
        load_official([bad, official_state(1), official_state(2)])
    nan = official_state(0) | {"layer3.weight": torch.full((1, 50), float("nan"))}
    with pytest.raises(ValueError, match="NaN or inf"):
        load_official([nan, nan, nan])
    with pytest.raises(FileNotFoundError, match="mlr_snet 1.pth"):
        import_official([tmp_path / "missing.pth"] * 3, tmp_path / "o.pt")
    with pytest.raises(ValueError, match="epochs=\\[1, 100\\]"):
        load_official([official_state(0)] * 3, epochs=[1, 100])


def test_the_probes_read_a_settled_output_and_its_answer_to_the_loss():
    state = official_state(3)
    snaps = load_official([state] * 3)
    settled = by_hand(state, [2.0] * 101)[-1]                     # 100 steps on the loss, then the read
    assert snapshot_output(snaps.at_epoch(1), 2.0) == pytest.approx(settled, abs=1e-6)
    assert stage_outputs(snaps, 2.0) == pytest.approx({1: settled, 100: settled, 200: settled}, abs=1e-6)
    answers = output_by_loss(snaps.at_epoch(1), [0.5, 2.0, 4.0], settle_loss=2.0)
    assert answers[1] == pytest.approx(settled, abs=1e-6) and len(set(round(a, 6) for a in answers)) == 3


def test_constant_net_and_gamma_only_replace_the_lstm_by_its_recorded_mean_outputs():
    from metakit.experiments import Config, run
    from metakit.methods.mlrsnet import MLRSNetOptions, VARIANTS

    r = run(Config(method="mlrsnet", profile="smoke", epochs=3, progress=False, device="cpu"))
    snaps, gamma = r.learner, float(r.method.lr_net.gamma)
    by_hand = [sum(t["lr"] for t in r.method.trace if t["epoch"] == e) / gamma /
               sum(1 for t in r.method.trace if t["epoch"] == e) for e in range(3)]
    assert snaps.outputs == pytest.approx(by_hand, rel=1e-9)                  # each epoch's mean LR / γ
    for variant, stages in (("constant_net", [1, 1, 3]), ("gamma_only", [1, 1, 1])):
        name, options = VARIANTS[variant].meta_test(snaps, MLRSNetOptions(), 0.0)
        assert name == "staged" and options["constants"] == pytest.approx([by_hand[e - 1] for e in stages])
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        s = StagedSchedule(snaps, opt, iters_per_epoch=2, epochs=6, num_classes=10, full_loss=lambda: 2.3,
                           constants=options["constants"])
        lrs = [s.update(loss) for loss in (2.0, 0.1) * 6]                   # the loss no longer moves the LR
        assert lrs[0] == lrs[1] == pytest.approx(s.switches[0]["gamma"] * options["constants"][0])
    with pytest.raises(ValueError, match="record no mean outputs"):
        VARIANTS["constant_net"].meta_test(load_official([official_state(0)] * 3), MLRSNetOptions(), 0.0)
