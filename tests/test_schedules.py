"""The one LR protocol: every schedule by name, its LR in the optimiser, resume, and the one caller."""
import math

import pytest
import torch

from metakit.experiments.loop import fit
from metakit.learners.lr_net import LRSnapshots, MLRSNet
from metakit.methods import get_method
from metakit.methods.base import Method, Trainer
from metakit.schedules import LR_SCHEDULES, LRSchedule, build_schedule, lr_function


def _quadratic(seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(5, generator=g, dtype=torch.float64)
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    return w, target


def _options(name):
    if name == "learned":
        torch.manual_seed(0)
        net = MLRSNet(10, hidden=4, gamma=0.2)
        torch.nn.init.normal_(net.head.weight)
        return {"net": net}
    if name == "staged":    # three snapshots with distinct heads, γ from a loss that moves with the calls
        torch.manual_seed(0)
        nets = [MLRSNet(10, hidden=4, gamma=0.2, normalise=False) for _ in range(3)]
        for net in nets:
            torch.nn.init.normal_(net.head.weight)
        calls = iter(range(100))
        return {"snapshots": LRSnapshots.of(nets), "num_classes": 10, "full_loss": lambda: 2.0 - 0.1 * next(calls)}
    return {"beta": 1e-2} if name == "hd" else {}


def _lrs(schedule, w, target, steps, start_lrs=()):
    """Run ``steps`` plain SGD steps on ½‖w − target‖², the schedule called after backward."""
    lrs = list(start_lrs)
    for _ in range(steps):
        loss = 0.5 * ((w - target) ** 2).sum()
        schedule.optimizer.zero_grad()
        loss.backward()
        lrs.append(schedule.update(loss.detach()))
        schedule.optimizer.step()
    return lrs


@pytest.mark.parametrize("name", LR_SCHEDULES)
def test_every_schedule_writes_the_lr_it_returns_into_every_group(name):
    w, target = _quadratic()
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([{"params": [w]}, {"params": [b]}], lr=0.1)
    s = build_schedule(name, opt, iters_per_epoch=3, epochs=2, **_options(name))
    assert isinstance(s, LRSchedule) and set(s.needs) <= {"progress", "loss", "grads"}
    lr = _lrs(s, w, target, 4)[-1]
    assert [g["lr"] for g in opt.param_groups] == [lr, lr] and lr > 0 and s.iteration == 4


@pytest.mark.parametrize("name", LR_SCHEDULES)
def test_a_resumed_schedule_continues_exactly(name):
    w, target = _quadratic()
    whole = build_schedule(name, torch.optim.SGD([w], lr=0.1), iters_per_epoch=3, epochs=2, **_options(name))
    expected = _lrs(whole, w, target, 6)

    w, target = _quadratic()
    first = build_schedule(name, torch.optim.SGD([w], lr=0.1), iters_per_epoch=3, epochs=2, **_options(name))
    head = _lrs(first, w, target, 3)
    state = first.state_dict()
    second = build_schedule(name, torch.optim.SGD([w], lr=0.1), iters_per_epoch=3, epochs=2, **_options(name))
    second.load_state_dict(state)
    assert _lrs(second, w, target, 3, head) == expected


def test_hd_follows_the_dot_product_of_successive_gradients():
    w, target = _quadratic()
    s = build_schedule("hd", torch.optim.SGD([w], lr=0.1), iters_per_epoch=1, beta=0.05)
    lrs = _lrs(s, w, target, 3)
    # by hand: g_t = w_t − target, w_{t+1} = w_t − α_t g_t, α_t = α_{t−1} + β⟨g_t, g_{t−1}⟩
    v, t = torch.zeros(5, dtype=torch.float64), _quadratic()[1]
    alpha, previous, by_hand = 0.1, None, []
    for _ in range(3):
        g = v - t
        if previous is not None:
            alpha = alpha + 0.05 * float(g @ previous)
        by_hand.append(alpha)
        v, previous = v - alpha * g, g
    assert lrs == pytest.approx(by_hand, rel=1e-12) and lrs[1] != lrs[0]


def test_hand_schedules_by_name_equal_lr_function():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    s = build_schedule("sgdr", opt, iters_per_epoch=4, epochs=7)
    fn = lr_function("sgdr", 0.3, 7)
    assert [s.update() for _ in range(28)] == [fn(i / 4) for i in range(28)]


def test_a_schedule_that_reads_the_loss_refuses_none():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    s = build_schedule("learned", opt, iters_per_epoch=1, net=MLRSNet(10, hidden=3, gamma=0.2))
    with pytest.raises(ValueError, match="loss=None"):
        s.update()


def test_unknown_names_and_misplaced_options_are_named():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="schedule='magic'"):
        build_schedule("magic", opt, iters_per_epoch=1)
    with pytest.raises(ValueError, match="schedule='cosine' takes no options"):
        build_schedule("cosine", opt, iters_per_epoch=1, beta=1e-3)
    with pytest.raises(ValueError, match="exactly one of net"):
        build_schedule("learned", opt, iters_per_epoch=1)


def test_a_registered_builder_is_built_by_name_and_a_taken_name_is_refused():
    from metakit.schedules.hand import Schedule
    from metakit.schedules.registry import BUILDERS, ScheduleArgs, register_schedule, schedule_names

    assert LR_SCHEDULES == schedule_names() == ("fixed", "multistep", "exp", "cosine", "sgdr", "hd", "learned",
                                                "staged")

    @register_schedule("step_down")
    def step_down(optimizer, args: ScheduleArgs, *, factor=0.5):
        return Schedule(optimizer, lambda e: 0.2 * factor ** int(e), args.iters_per_epoch)

    try:
        s = build_schedule("step_down", torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0),
                           iters_per_epoch=2, factor=0.1)
        assert [round(s.update(), 6) for _ in range(4)] == [0.2, 0.2, 0.02, 0.02]
        assert schedule_names()[-1] == "step_down"
        with pytest.raises(ValueError, match="schedule='step_down' is registered already"):
            register_schedule("step_down")(step_down)
    finally:
        BUILDERS.pop("step_down")
    assert "step_down" not in schedule_names()


def test_config_schedule_options_reach_the_schedule_and_keep_old_keys():
    from metakit.experiments import Config
    from metakit.experiments.run import build, config_key

    plain = Config(profile="smoke")
    assert "schedule_options" not in plain.canonical()                # keys of runs from before the field
    assert config_key(plain.resolve()) != config_key(Config(profile="smoke", schedule="hd",
                                                            schedule_options={"beta": 0.5}).resolve())
    parts = build(Config(profile="smoke", schedule="hd", schedule_options={"beta": 0.5, "min_lr": 0.01}).resolve())
    schedule = parts.trainer.schedule
    assert (schedule.name, schedule.beta, schedule.min_lr) == ("hd", 0.5, 0.01)
    with pytest.raises(ValueError, match=r"schedule='cosine' takes no options \['beta'\]"):
        build(Config(profile="smoke", schedule="cosine", schedule_options={"beta": 0.5}).resolve())
    with pytest.raises(ValueError, match="schedule='staged' needs exactly one of snapshots"):
        build(Config(profile="smoke", schedule="staged").resolve())
    with pytest.raises(ValueError, match="schedule='magic' is unknown"):
        Config(profile="smoke", schedule="magic").resolve()


def test_methods_declare_their_schedule_and_typed_options():
    assert Method(3, [3, 2, 1]).lr_schedule() is None
    assert get_method("hd")(3, [3, 2, 1], hd_beta=0.5).lr_schedule() == ("hd", {"beta": 0.5, "min_lr": 0.0})
    assert get_method("mlrsnet")(3, [3, 2, 1]).lr_schedule() == ("fixed", {})
    with pytest.raises(ValueError, match="hd_beta=-1"):
        get_method("hd")(3, [3, 2, 1], hd_beta=-1)
    with pytest.raises(ValueError, match="meta_every=0"):
        get_method("mlrsnet")(3, [3, 2, 1], meta_every=0)


class _Batch:
    def __init__(self, x, y):
        self.x, self.y = x, y


def test_fit_scores_with_the_metric_it_is_given_and_steps_through_the_schedule():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)      # float32: Method.train_step takes the loss in fp32
    net = torch.nn.Linear(3, 2)
    w0, b0 = net.weight.detach().clone(), net.bias.detach().clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    schedule = build_schedule("exp", opt, iters_per_epoch=2, epochs=2, gamma=0.1)
    trainer = Trainer(net, opt, schedule, torch.device("cpu"))
    batches = [_Batch(x[:4], y[:4]), _Batch(x[4:], y[4:])]
    history = fit(trainer, Method(2, [4, 4]), batches, batches, 2, progress=False,
                  score=lambda m, bs: {"weight_norm": float(m.weight.detach().norm())})
    assert list(history.columns) == ["epoch", "train_loss", "train_acc", "lr", "weight_norm", "seconds"]
    # by hand: four SGD steps at the exp schedule's LR 0.5 · 0.1^(i/4)
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    for i, batch in enumerate(batches * 2):
        loss = torch.nn.functional.cross_entropy(batch.x @ w.T + b, batch.y)
        gw, gb = torch.autograd.grad(loss, (w, b))
        lr = 0.5 * 0.1 ** (i / 4)
        w, b = (w - lr * gw).detach().requires_grad_(), (b - lr * gb).detach().requires_grad_()
    assert torch.allclose(net.weight, w, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(w0, w, rtol=1e-3, atol=1e-3)                       # it did train
    assert history["weight_norm"].iloc[-1] == pytest.approx(float(w.detach().norm()), rel=1e-5)
    assert history["lr"].iloc[1] == pytest.approx((0.5 * 0.1 ** 0.5 + 0.5 * 0.1 ** 0.75) / 2, rel=1e-6)
    assert math.isfinite(history["train_loss"].iloc[-1])


def test_fit_without_class_counts_or_score_says_what_it_needs():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    trainer = Trainer(net, opt, build_schedule("fixed", opt, iters_per_epoch=1), torch.device("cpu"))
    with pytest.raises(ValueError, match="class_counts=None"):
        fit(trainer, Method(2, [1, 1]), [], [], 1, progress=False)


def test_schedule_hd_in_the_config_is_the_hd_method():
    """One protocol: Config(schedule="hd") on plain CE is exactly what method "hd" declares."""
    from metakit.experiments import Config, run

    common = dict(profile="smoke", epochs=2, progress=False, momentum=0.0, device="cpu")
    by_schedule = run(Config(schedule="hd", **common)).history
    by_method = run(Config(method="hd", **common)).history
    cols = ["lr", "train_loss", "test_acc"]
    assert by_schedule[cols].equals(by_method[cols])
