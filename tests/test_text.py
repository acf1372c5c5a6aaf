import pytest
import torch

from metakit.learners.lr_net import MLRSNet, save_schedule
from metakit.data.text import load_corpus, tiny_corpus, tokenize
from metakit.experiments.text import LM_SCHEDULES, run_lm


def test_tiny_corpus_is_deterministic_and_split():
    assert tiny_corpus(50, seed=3) == tiny_corpus(50, seed=3) != tiny_corpus(50, seed=4)
    splits = load_corpus("tiny")
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [2400, 300, 300]


def test_tokenize_maps_unknown_words_to_unk():
    ids, vocab = tokenize({"train": ["x y"], "valid": ["z"], "test": []})
    assert ids["valid"].tolist() == [vocab.index("<unk>"), vocab.index("<eos>")]


def test_missing_ptb_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="ptb.train.txt"):
        load_corpus("ptb", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", [s for s in LM_SCHEDULES if s != "learned"])
def test_every_schedule_trains_the_language_model_at_smoke(schedule):
    r = run_lm("smoke", schedule, epochs=1)
    assert 1 < r.test_ppl < r.vocab_size                  # better than a uniform guess over the vocabulary
    assert r.history["lr"].iloc[0] > 0


def test_learned_schedule_from_images_drives_the_language_model(tmp_path):
    torch.manual_seed(0)
    lr_net = MLRSNet(10, hidden=8, gamma=6.0)             # "learned" on 10 classes, γ = 2 × 3.0
    torch.nn.init.normal_(lr_net.head.weight)
    path = save_schedule(lr_net, tmp_path / "s.pt")
    r = run_lm("smoke", "learned", schedule_file=str(path), epochs=1)
    assert r.lr_net.loss_scale.item() == pytest.approx(torch.tensor(float(r.vocab_size)).log().item())
    assert 0 < r.history["lr"].iloc[0] < 6.0 and r.test_ppl < r.vocab_size


def test_bad_schedule_named():
    with pytest.raises(ValueError, match="schedule='magic'"):
        run_lm("smoke", "magic")
    with pytest.raises(ValueError, match="schedule_file"):
        run_lm("smoke", "learned")


def test_run_lm_through_the_loop_equals_a_hand_written_lm_loop():
    """The loop `run_lm` now shares with the image tasks gives the numbers of a plain LM loop."""
    import math

    import torch.nn.functional as F

    from metakit.data.text import chunks
    from metakit.experiments.text import perplexity
    from metakit.models.lm import LSTMLanguageModel
    from metakit.schedules import lr_function

    r = run_lm("smoke", "cosine", epochs=2, seed=3, device="cpu")
    ids, vocab = tokenize(load_corpus("tiny"))
    dev = torch.device("cpu")
    train, valid, test = (chunks(ids[s], 16, 20, dev) for s in ("train", "valid", "test"))
    torch.manual_seed(3)
    net = LSTMLanguageModel(len(vocab), 32, 32, 2, 0.0)
    opt = torch.optim.SGD(net.parameters(), lr=3.0)
    lr_at = lr_function("cosine", 3.0, 2)
    order, step, valid_ppl = torch.Generator().manual_seed(3), 0, []
    for _ in range(2):
        for i in torch.randperm(len(train), generator=order).tolist():
            x, y = train[i]
            loss = F.cross_entropy(net(x), y.flatten())
            for group in opt.param_groups:
                group["lr"] = lr_at(step / len(train))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        valid_ppl.append(perplexity(net, valid))
    assert r.history["valid_ppl"].tolist() == valid_ppl
    assert r.test_ppl == perplexity(net, test) and math.isfinite(r.test_ppl)


def test_hypergradient_descent_drives_the_language_model_too():
    hd, fixed = run_lm("smoke", "hd", epochs=1), run_lm("smoke", "fixed", epochs=1)
    assert hd.history["lr"].iloc[0] != fixed.history["lr"].iloc[0] == 3.0
    assert 1 < hd.test_ppl < hd.vocab_size
