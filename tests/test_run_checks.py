"""The checks of the training exercises (notebooks 03–05) both ways, with hints that hold no answer."""
import math
import types
from pathlib import Path

import pandas as pd
import pytest
import torch

from metakit.experiments import Config
from metakit.learners.lr_net import LRSnapshots, MLRSNet, save_schedule
from metakit.teaching import run_checks

ROOT = Path(__file__).resolve().parents[1]


def failure(check, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        check(*args, **kwargs)
    assert str(info.value).startswith("Not yet. Hint: ")
    return str(info.value)


# ---- best_epoch (notebook 04): selected on validation; epoch 3 is the best test epoch, 4 the best train epoch
HISTORY = pd.DataFrame({"epoch": [1, 2, 3, 4, 5], "val_acc": [10.0, 30.0, 20.0, 25.0, 15.0],
                        "test_acc": [10.0, 20.0, 30.0, 25.0, 15.0], "train_acc": [5.0, 6.0, 7.0, 9.0, 8.0]})
RUNS = {"fixed": types.SimpleNamespace(history=HISTORY), "cosine": types.SimpleNamespace(history=HISTORY.iloc[::-1])}


def test_best_epoch_both_ways(capsys):
    run_checks.check_best_epoch({"fixed": 2, "cosine": 2}, RUNS)
    assert "✓" in capsys.readouterr().out
    for wrong, hint in [({}, "no entry for ['cosine', 'fixed']"), ({"fixed": 1, "cosine": 2}, "row index"),
                        ({"fixed": 3, "cosine": 2}, "best test accuracy; select on the validation split"),
                        ({"fixed": 4, "cosine": 2}, "best train accuracy"), ({"fixed": 5, "cosine": 2}, "epoch 5 is not"),
                        ({"fixed": 2.0, "cosine": 2}, "int epoch"), ([], "dict name → epoch"),
                        ({"fixed": 2, "cosine": 2, "sgdr": 1}, "not runs here")]:
        message = failure(run_checks.check_best_epoch, wrong, RUNS)
        assert hint in message and "epoch 2" not in message.replace("epoch 2 is", "")


def test_best_epoch_accepts_any_tied_validation_epoch_and_needs_a_validation_split():
    tied = pd.DataFrame({"epoch": [1, 2, 3], "val_acc": [30.0, 10.0, 30.0], "test_acc": [1.0, 2.0, 3.0],
                         "train_acc": [1.0, 2.0, 3.0]})
    for epoch in (1, 3):
        run_checks.check_best_epoch({"fixed": epoch}, {"fixed": tied})
    with pytest.raises(ValueError, match="has no validation accuracy"):
        run_checks.check_best_epoch({"fixed": 1}, {"fixed": tied.drop(columns="val_acc")})


# ---- high_noise (notebook 04): the config of uniform's run, noise_rate 0.6 and nothing else
def result(**fields):
    return types.SimpleNamespace(config=Config(profile="smoke", noise_kind="uniform", **fields).resolve())


def test_high_noise_both_ways(capsys):
    uniform = {"cosine": result(noise_rate=0.4, method="ce"), "mlrsnet": result(noise_rate=0.4, method="mlrsnet")}
    right = {"cosine": result(noise_rate=0.6, method="ce"), "mlrsnet": result(noise_rate=0.6, method="mlrsnet")}
    run_checks.check_high_noise(right, uniform)
    assert "✓" in capsys.readouterr().out
    flip = {**right, "cosine": types.SimpleNamespace(config=Config(profile="smoke", noise_kind="flip", noise_rate=0.6,
                                                                   method="ce").resolve())}
    assert "in noise_kind (yours 'flip')" in failure(run_checks.check_high_noise, flip, uniform)
    assert "in noise_rate (yours 0.4)" in failure(run_checks.check_high_noise, uniform, uniform)
    assert "has the entries []" in failure(run_checks.check_high_noise, {}, uniform)
    assert "store what run returns" in failure(run_checks.check_high_noise, {"cosine": 1, "mlrsnet": 2}, uniform)


# ---- small_lr (notebook 05)
REFERENCE = pd.DataFrame({"variation": ["MLP"] * 3, "schedule": ["fixed", "cosine", "learned"],
                          "test_acc": [80.0, 82.0, 85.5], "final_lr": [0.1, 0.0, 0.0731]})


def small(fixed_lr=0.02, learned=(85.5, 0.0731), schedules=("fixed", "learned")):
    rows = {"fixed": (70.0, fixed_lr), "cosine": (71.0, 0.0), "learned": learned}
    return pd.DataFrame([{"variation": "MLP, lr 0.02", "schedule": s, "test_acc": rows[s][0], "final_lr": rows[s][1]}
                         for s in schedules])


def test_small_lr_both_ways(capsys):
    run_checks.check_small_lr(small(), REFERENCE)
    run_checks.check_small_lr(small(fixed_lr=float(torch.tensor(0.02))), REFERENCE)      # the LR as float32 stores it
    assert capsys.readouterr().out.count("✓") == 2
    assert "fixed baseline only" in failure(run_checks.check_small_lr, small(schedules=("fixed", "cosine", "learned")),
                                            REFERENCE)
    assert "ends at LR 0.2" in failure(run_checks.check_small_lr, small(fixed_lr=0.2), REFERENCE)
    message = failure(run_checks.check_small_lr, small(learned=(60.0, 0.05)), REFERENCE)
    assert "model (mlp)" in message and "85.5" not in message
    assert "not a dict" in failure(run_checks.check_small_lr, {}, REFERENCE)


# ---- unscaled_lr (notebook 05): the last snapshot's first LR with its learned γ
@pytest.fixture
def schedule_file(tmp_path):
    torch.manual_seed(0)
    nets = [MLRSNet(10, hidden=4, gamma=g, normalise=False) for g in (0.3, 0.5)]
    for net in nets:
        torch.nn.init.normal_(net.head.weight, std=1.0)
    return save_schedule(LRSnapshots.of(nets), tmp_path / "s.pt")


def test_unscaled_lr_both_ways(schedule_file, capsys):
    from metakit.learners.lr_net import load_schedule
    from metakit.schedules import LearnedSchedule

    def first(base_lr=None, snapshot="last"):
        snaps = load_schedule(schedule_file)[0]
        net = snaps.last if snapshot == "last" else snaps.at_epoch(1)
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=3.0)
        return LearnedSchedule(net, opt, num_classes=50, base_lr=base_lr).step(3.0)

    right = first()
    run_checks.check_unscaled_lr(right, schedule_file, vocab_size=50)
    assert "✓" in capsys.readouterr().out
    for wrong, hint in [(first(base_lr=3.0), "leave base_lr out"), (first(snapshot="first"), "first snapshot"),
                        (right * 1.5, "is not the first LR"), ({}, "one float")]:
        message = failure(run_checks.check_unscaled_lr, wrong, schedule_file, vocab_size=50)
        assert hint in message and f"{right:.4f}" not in message and f"{right:.4g}" not in message


# ---- every_step (notebook 03): a one-epoch rerun decides
@pytest.mark.slow
def test_every_step_both_ways(capsys):
    from metakit.experiments import run
    from metakit.studies.schedules import table_config

    history = {name: run(table_config("cifar10", name, "smoke", 0, dataset="digits")).history
               for name in ("mlrsnet", "mlrsnet_final_net", "mlrsnet_every_step")}
    run_checks.check_every_step(history["mlrsnet_every_step"], history["mlrsnet"], "smoke", 0, "digits")
    assert "✓" in capsys.readouterr().out
    check = lambda h: failure(run_checks.check_every_step, h, history["mlrsnet"], "smoke", 0, "digits")  # noqa: E731
    assert "official protocol's history" in check(history["mlrsnet"])
    assert "first epoch differs" in check(history["mlrsnet_final_net"])
    assert "not a dict" in check({})
    assert "epochs" in check(history["mlrsnet_every_step"].iloc[:2])


def test_small_lr_refuses_a_fixed_row_written_by_hand(capsys):
    """With the profile, the check reruns the fixed baseline: a fabricated row at lr 0.02 fails."""
    from metakit.studies.schedules import schedule_job, table_config

    fixed = schedule_job(table_config("cifar10", "fixed", "smoke", 0, model="mlp", lr=0.02, dataset="digits"))
    real = small(fixed_lr=fixed["final_lr"])
    real.loc[real.schedule == "fixed", "test_acc"] = fixed["test_acc"]
    run_checks.check_small_lr(real, REFERENCE, profile="smoke", seed=0, dataset="digits")
    assert "✓" in capsys.readouterr().out
    message = failure(run_checks.check_small_lr, small(), REFERENCE, profile="smoke", seed=0, dataset="digits")
    assert "don't write the row" in message and f"{fixed['test_acc']:.1f}" not in message
    assert "not a NoneType" in failure(run_checks.check_small_lr, None, REFERENCE)


def test_unscaled_lr_needs_no_vocabulary_for_a_raw_loss_net_and_the_prompt_does_not_ask_for_it(schedule_file):
    """The official net reads the raw loss: num_classes changes nothing, so the exercise no longer asks for it."""
    import nbformat
    from metakit.learners.lr_net import load_schedule
    from metakit.schedules import LearnedSchedule

    opt = lambda: torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=3.0)   # noqa: E731
    without = LearnedSchedule(load_schedule(schedule_file)[0].last, opt()).step(3.0)
    run_checks.check_unscaled_lr(without, schedule_file, vocab_size=50)
    assert without == LearnedSchedule(load_schedule(schedule_file)[0].last, opt(), num_classes=50).step(3.0)
    nb = nbformat.read(next((ROOT / "notebooks").glob("05_*.ipynb")), as_version=4)
    prompt = next(c.source for c in nb.cells if "unscaled_lr" in c.source and c.cell_type == "markdown")
    assert "num_classes" not in prompt
    assert "still None" in failure(run_checks.check_unscaled_lr, None, schedule_file, vocab_size=50)


# ---- first_lr (notebook 03): a fresh LearnedSchedule on the last snapshot, first step, loss log(10)
def test_first_lr_both_ways(schedule_file, capsys):
    from metakit.learners.lr_net import load_schedule
    from metakit.schedules import LearnedSchedule

    def first(snapshot="last", steps=1):
        snaps = load_schedule(schedule_file)[0]
        net = snaps.last if snapshot == "last" else snaps.at_epoch(1)
        schedule = LearnedSchedule(net, torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
        return [schedule.step(math.log(10)) for _ in range(steps)][-1]

    right = first()
    run_checks.check_first_lr(right, schedule_file)
    assert "✓" in capsys.readouterr().out
    for wrong, hint in [(first("first"), "first snapshot"), (first(steps=2), "second step"),
                        (right * 1.5, "is not the first LR"), (torch.tensor(right), "one float"),
                        (None, "still None")]:
        message = failure(run_checks.check_first_lr, wrong, schedule_file)
        assert hint in message and f"{right:.4f}" not in message and f"{right:.4g}" not in message, message
