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
