"""Notebook 01's last exercise both ways: a hand-written MW-Net loop that is right passes the check
against `run`'s mwnet at the same seed; plausible wrong loops fail with a hint naming their mistake."""
import types

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metakit.experiments import run
from metakit.meta import lookahead
from metakit.teaching import mwnet_loop as ml
from metakit.teaching.run_checks import check_mwnet_loop

CONFIG = ml.loop_config("digits", epochs=1)


def _copies():
    """A copy of `reference_loop` (and its `_meta_update`): stands in for a student's loop with one mistake.
    The check refuses the library's own function objects as answers, not a loop that computes the same."""
    space = dict(vars(ml))
    for name in ("reference_loop", "_meta_update"):
        fn = getattr(ml, name)
        space[name] = types.FunctionType(fn.__code__, space, name, fn.__defaults__)
    return space["reference_loop"]


student_loop = _copies()


def hand_loop(parts, epochs, *, updated=True, graph=True, normalise=True, clone_buffers=True):
    """A student's loop; each flag off is one plausible mistake."""
    net, weight_net = parts.net, parts.weight_net
    for _ in range(epochs):
        for batch in parts.train:
            meta_batch = next(parts.meta)
            lr = parts.schedule.update(None)
            params = dict(net.named_parameters())
            buffers = {n: b.clone() for n, b in net.named_buffers()} if clone_buffers else {}
            per_sample = F.cross_entropy(functional_call(net, {**params, **buffers}, (batch.x,)), batch.y,
                                         reduction="none")
            c = weight_net.weights(per_sample) if normalise else weight_net.raw_weights(per_sample)
            grads = torch.autograd.grad((c * per_sample).sum(), list(params.values()), create_graph=graph)
            virtual = {n: p - lr * (g + parts.weight_decay * p) for (n, p), g in zip(params.items(), grads)}
            buffers = {n: b.clone() for n, b in net.named_buffers()} if clone_buffers else {}
            meta = F.cross_entropy(functional_call(net, {**virtual, **buffers}, (meta_batch.x,)), meta_batch.y)
            parts.meta_optimizer.zero_grad()
            meta.backward()
            parts.meta_optimizer.step()
            per_sample = F.cross_entropy(net(batch.x), batch.y, reduction="none")      # the real step's forward
            if updated:                                                                # weights from the updated φ
                with torch.no_grad():
                    c = weight_net.weights(per_sample) if normalise else weight_net.raw_weights(per_sample)
            parts.optimizer.zero_grad()
            (c.detach() * per_sample).sum().backward(inputs=list(net.parameters()))
            parts.optimizer.step()


def reuse_forward_loop(parts, epochs):
    """Right, written another way: metakit's lookahead, the virtual step's forward reused for the real step."""
    net = parts.net
    for _ in range(epochs):
        for batch in parts.train:
            meta_batch = next(parts.meta)
            lr = parts.schedule.update(None)
            logits = functional_call(net, {**dict(net.named_parameters()), **ml.cloned_buffers(net)}, (batch.x,))
            losses = F.cross_entropy(logits, batch.y, reduction="none")
            virtual = lookahead(net, (parts.weight_net.weights(losses) * losses).sum(), lr,
                                weight_decay=parts.weight_decay)
            meta_logits = functional_call(net, {**virtual, **ml.cloned_buffers(net)}, (meta_batch.x,))
            hyper = torch.autograd.grad(F.cross_entropy(meta_logits, meta_batch.y), list(parts.weight_net.parameters()))
            for p, g in zip(parts.weight_net.parameters(), hyper):
                p.grad = g
            parts.meta_optimizer.step()
            with torch.no_grad():
                c = parts.weight_net.weights(losses)
            parts.optimizer.zero_grad()
            (c * losses).sum().backward(inputs=list(net.parameters()))
            net(batch.x)                          # the real step's forward updates BatchNorm's statistics once
            parts.optimizer.step()


def own_rounding_loop(parts, epochs):
    """Right, with other float32 rounding: cross-entropy from log_softmax, the weights normalised by hand."""
    net, weight_net = parts.net, parts.weight_net

    def losses(logits, y):
        return -torch.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)

    def weights(per_sample):
        raw = weight_net.raw_weights(per_sample)
        return raw / raw.sum()
    for _ in range(epochs):
        for batch in parts.train:
            meta_batch = next(parts.meta)
            lr = parts.schedule.update(None)
            per_sample = losses(functional_call(net, {**dict(net.named_parameters()), **ml.cloned_buffers(net)},
                                                (batch.x,)), batch.y)
            names, params = zip(*net.named_parameters())
            grads = torch.autograd.grad((weights(per_sample) * per_sample).sum(), params, create_graph=True)
            virtual = {n: p * (1 - lr * parts.weight_decay) - lr * g for n, p, g in zip(names, params, grads)}
            meta = losses(functional_call(net, {**virtual, **ml.cloned_buffers(net)}, (meta_batch.x,)),
                          meta_batch.y).mean()
            parts.meta_optimizer.zero_grad()
            meta.backward(inputs=list(weight_net.parameters()))
            parts.meta_optimizer.step()
            per_sample = losses(net(batch.x), batch.y)
            parts.optimizer.zero_grad()
            (weights(per_sample).detach() * per_sample).sum().backward()
            parts.optimizer.step()


def failure(fn, config=CONFIG) -> str:
    with pytest.raises(AssertionError) as info:
        check_mwnet_loop(fn, config)
    assert str(info.value).startswith("Not yet. Hint: ")
    return str(info.value)


def test_parts_are_the_library_runs_and_the_reference_loop_matches_run():
    parts = ml.loop_parts(CONFIG)
    ml.reference_loop(parts, CONFIG.epochs)
    library = run(CONFIG)
    assert torch.allclose(ml.snapshot(parts)["θ"], torch.cat([p.detach().double().flatten()
                                                              for p in library.net.parameters()]), atol=1e-5)


def test_right_loops_pass_and_print_the_measured_distance(capsys):
    check_mwnet_loop(hand_loop, CONFIG)
    check_mwnet_loop(reuse_forward_loop, CONFIG)
    check_mwnet_loop(own_rounding_loop, CONFIG)
    out = capsys.readouterr().out
    assert out.count("✓ your loop matches metakit's mwnet run: after 1 epoch (7 steps)") == 3
    assert out.count("tolerance 1e-02") == 3


@pytest.mark.parametrize("flags,hint", [
    ({"updated": False}, "from *before* its update"),
    ({"graph": False}, "does not reach the weight net"),
    ({"normalise": False}, "not normalised as the library's"),
    ({"clone_buffers": False}, "BatchNorm statistics"),
])
def test_plausible_wrong_loops_fail_with_their_hint(flags, hint):
    message = failure(lambda parts, epochs: hand_loop(parts, epochs, **flags))
    assert hint in message, message


@pytest.mark.parametrize("mistake", sorted(ml.MISTAKES))
def test_every_known_mistake_is_named(mistake):
    message = failure(lambda parts, epochs: student_loop(parts, epochs, mistake))
    assert ml.MISTAKES[mistake] in message, message


def same_order_loop(parts, epochs):
    """Wrong only across epochs: the first epoch's batch order again and again."""
    student_loop(ml.LoopParts(parts.net, parts.weight_net, parts.optimizer, parts.meta_optimizer, parts.schedule,
                              list(parts.train), parts.meta, parts.weight_decay), epochs)


@pytest.mark.parametrize("loop", [lambda parts, epochs: student_loop(parts, 1), same_order_loop],
                         ids=["one_epoch_short", "same_batch_order"])
def test_a_loop_wrong_across_epochs_fails_after_the_first_steps(loop):
    message = failure(loop, ml.loop_config("digits", epochs=2))
    assert "your first 3 steps match the library's, but after 2 epochs" in message


def test_the_template_and_a_wrong_method_are_named():
    def template(parts, epochs):
        raise NotImplementedError("Exercise: write your solution here")
    assert "still raises NotImplementedError" in failure(template)
    with pytest.raises(ValueError, match="config.method='ce': the loop exercise trains Meta-Weight-Net"):
        ml.loop_parts(ml.loop_config().__class__(method="ce", profile="smoke"))


@pytest.mark.parametrize("answer,name", [
    (ml.reference_loop, "metakit.teaching.mwnet_loop.reference_loop"),                     # my_mwnet_training = reference_loop
    (lambda parts, epochs: ml.reference_loop(parts, epochs), "mwnet_loop.reference_loop"),  # a wrapper
    (lambda parts, epochs: ml._meta_update(parts, None, None, None, 0.1, None), "mwnet_loop._meta_update"),
    (lambda parts, epochs: ml.library_steps(CONFIG, 1), "mwnet_loop.library_steps"),
    (lambda parts, epochs: [__import__("metakit.methods.mwnet", fromlist=["MWNet"]).MWNet.train_step(None, None, None, None)],
     "metakit.methods.mwnet.MWNet.train_step"),
])
def test_the_library_loops_are_refused_as_answers(answer, name):
    """The reference loop stays importable (the check diagnoses mistakes with it) but never passes as an answer."""
    message = failure(answer)
    assert "called the library's" in message and name in message and "write it yourself" in message
    parts = ml.loop_parts(CONFIG, steps=1)
    ml.reference_loop(parts, 1)                                      # switched back on after the check
