"""SGDR and hypergradient descent against hand computations; every table entry at smoke."""
import math

import numpy as np
import pytest
import torch

from metakit.schedules.hd import HypergradientLR
from metakit.studies import Plan, run_study
from metakit.studies.schedules import STUDY, available_entries, summarise
from metakit.schedules import lr_function, sgdr_position


def test_sgdr_restarts_by_hand():
    f = lr_function("sgdr", 1.0, 14, t0=2, t_mult=2)           # cycles [0,2), [2,6), [6,14)
    hand = {0: 1.0, 1: 0.5, 2: 1.0, 4: 0.5, 5: 0.5 * (1 + math.cos(math.pi * 3 / 4)), 6: 1.0, 10: 0.5}
    for epoch, lr in hand.items():
        assert f(epoch) == pytest.approx(lr), epoch
    # default t0 fits three cycles into the run: 14 / (1 + 2 + 4) = 2
    g = lr_function("sgdr", 1.0, 14)
    assert [g(e) for e in range(14)] == pytest.approx([f(e) for e in range(14)])
    assert sgdr_position(7.0, 3, 1) == (1.0, 3)              # t_mult 1: a fixed period


def test_sgdr_bad_arguments_named():
    with pytest.raises(ValueError, match="t_mult"):
        lr_function("sgdr", 0.1, 10, t_mult=0.5)
    with pytest.raises(ValueError, match="t0"):
        lr_function("sgdr", 0.1, 10, t0=0)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_hypergradient_descent_matches_a_hand_computation(weight_decay):
    a, target, alpha0, beta = np.array([1.0, 3.0]), np.array([1.0, -2.0]), 0.05, 1e-3
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=alpha0, weight_decay=weight_decay)
    hd = HypergradientLR(opt, beta=beta)
    lrs = []
    for _ in range(4):
        opt.zero_grad()
        (torch.tensor(a) * (w - torch.tensor(target)) ** 2).sum().backward()
        lrs.append(hd.update())
        opt.step()
    # by hand: f(w) = Σ a (w − t)², g = 2a(w − t) + wd·w, α_t = α_{t−1} + β g_t·g_{t−1}, w ← w − α_t g_t
    w_hand, alpha, previous, hand = np.zeros(2), alpha0, None, []
    for _ in range(4):
        g = 2 * a * (w_hand - target) + weight_decay * w_hand
        if previous is not None:
            alpha = alpha + beta * float(g @ previous)
        hand.append(alpha)
        w_hand, previous = w_hand - alpha * g, g
    assert lrs == pytest.approx(hand, rel=1e-12)
    assert w.detach().numpy() == pytest.approx(w_hand, rel=1e-12)
    assert len(set(lrs)) == 4 and min(lrs) > 0


def test_hypergradient_lr_never_goes_below_its_floor():
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.9)                        # overshoots: gradients alternate in sign
    hd = HypergradientLR(opt, beta=10.0, min_lr=0.01)
    for _ in range(2):                                       # g = −2 then 1.6: 0.9 + 10·(−3.2) < 0.01
        opt.zero_grad(); ((w - 1) ** 2).sum().backward(); lr = hd.update(); opt.step()
    assert lr == pytest.approx(0.01)


@pytest.mark.slow
def test_every_table_entry_runs_at_smoke():
    entries = available_entries()
    runs = run_study(STUDY, Plan("smoke", (0,), {"task": "noisy-cifar10", "entries": entries}, {"epochs": 1}))
    assert list(runs["entry"]) == entries
    assert runs["test_acc"].between(0, 100).all() and (runs["final_lr"] > 0).all()
    assert len(summarise(runs)) == len(entries)


def test_schedule_table_command_writes_csv_at_smoke(tmp_path, capsys):
    from metakit.cli import main

    out = tmp_path / "t.csv"
    assert main(["schedule-table", "noisy-cifar10", "--profile", "smoke", "--entries", "cosine", "mlrsnet",
                 "--epochs", "1", "--out", str(out)]) == 0
    import pandas as pd

    runs = pd.read_csv(out)
    assert list(runs["entry"]) == ["cosine", "mlrsnet"] and (tmp_path / "t_summary.csv").is_file()
    assert main(["schedule-table", "noisy-cifar10", "--profile", "smoke", "--entries", "magic",
                 "--out", str(out)]) == 2
    assert "magic" in capsys.readouterr().err
