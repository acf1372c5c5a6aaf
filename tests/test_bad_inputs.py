"""Bad input, as a table: each gives a clear error naming the argument and the value (and a
fix), and leaves no file behind."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metakit.cli import main as cli
from metakit.data.splits import SplitSpec, make_split, save_split
from metakit.data.sources import load_source
from metakit.experiments import Config, run


def config_case(**fields):
    return lambda tmp: run(Config(**{"profile": "smoke", "progress": False, **fields}), checkpoint_dir=tmp / "ckpt")


def cli_case(*argv):
    def call(tmp):
        code = cli(["run", "--profile", "smoke", "--no-progress", "--checkpoint-dir", str(tmp / "ckpt"), *argv])
        if code != 0:
            raise SystemExit(code)
    return call


def prep_case(module, *argv):
    def call(tmp):
        proc = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, cwd=tmp,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
    return call


def notebook_case(env_profile=None, **parameters):
    """What a notebook's parameters cell feeds into Config (papermill or METAKIT_PROFILE)."""
    def call(tmp):
        old = os.environ.get("METAKIT_PROFILE")
        try:
            if env_profile is not None:
                os.environ["METAKIT_PROFILE"] = env_profile
            run(Config(progress=False, **parameters), checkpoint_dir=tmp / "ckpt")
        finally:
            os.environ.pop("METAKIT_PROFILE", None) if old is None else os.environ.__setitem__("METAKIT_PROFILE", old)
    return call


def tampered_split(tmp):
    path = save_split(make_split(SplitSpec(imbalance=5), load_source("digits").train_y), tmp / "split.json")
    record = json.loads(path.read_text())
    record["split"]["meta_idx"][0] += 1
    path.write_text(json.dumps(record))
    run(Config(profile="smoke", progress=False, split_file=str(path)))


def foreign_checkpoint(tmp):
    """A checkpoint from another model placed where this config's checkpoint would be."""
    from metakit.experiments.run import build, config_key, snapshot_run
    mlp = Config(profile="smoke", model="mlp", progress=False).resolve()
    cnn = dataclasses.replace(mlp, model="digits_cnn")
    state = snapshot_run(build(mlp), 1, [{"epoch": 1}])
    state["key"], state["config"] = config_key(cnn), dataclasses.asdict(cnn)   # forged to match
    (tmp / "ckpt").mkdir()
    torch.save(state, tmp / "ckpt" / f"ce-{config_key(cnn)}.pt")
    run(cnn, checkpoint_dir=tmp / "ckpt", resume=True)


CASES = [
    # (id, call, exception, words the message must contain)
    ("imbalance<1", config_case(imbalance=0.5), ValueError, ["imbalance=0.5", "[1, inf)"]),
    ("imbalance str", config_case(imbalance="10"), TypeError, ["imbalance='10'"]),
    ("noise_rate=1", config_case(noise_kind="uniform", noise_rate=1.0), ValueError, ["noise_rate=1.0", "[0, 1)"]),
    ("noise without kind", config_case(noise_rate=0.2), ValueError, ["noise_rate=0.2", "noise_kind"]),
    ("noise kind", config_case(noise_kind="gauss", noise_rate=0.2), ValueError, ["noise_kind='gauss'", "uniform"]),
    ("dataset", config_case(dataset="mnist"), ValueError, ["dataset='mnist'", "digits"]),
    ("model", config_case(model="vgg16"), ValueError, ["model='vgg16'", "resnet32"]),
    ("method", config_case(method="mixup"), ValueError, ["method='mixup'", "ce"]),
    ("profile", config_case(profile="huge"), ValueError, ["profile='huge'", "smoke"]),
    ("meta too big", config_case(meta_per_class=500), ValueError, ["meta_per_class=500", "meta_per_class <"]),
    ("epochs=0", config_case(epochs=0), ValueError, ["epochs=0"]),
    ("batch float", config_case(batch_size=2.5), TypeError, ["batch_size=2.5", "integer"]),
    ("lr<0", config_case(lr=-0.1), ValueError, ["lr=-0.1"]),
    ("momentum>1", config_case(momentum=1.5), ValueError, ["momentum=1.5"]),
    ("optimizer", config_case(optimizer="lion"), ValueError, ["optimizer='lion'", "sgd"]),
    ("seed<0", config_case(seed=-1), ValueError, ["seed=-1"]),
    ("unknown option", config_case(method="focal", options={"gama": 2}), ValueError, ["gama", "focal_gamma"]),
    ("bad option value", config_case(method="focal", options={"focal_gamma": -1}), ValueError, ["focal_gamma=-1"]),
    ("options not dict", config_case(options=[1]), TypeError, ["options=[1]"]),
    ("cifar missing", config_case(dataset="cifar10", data_root="nowhere"), FileNotFoundError,
     ["nowhere", "python -m data_prep.cifar"]),
    ("split file missing", config_case(split_file="no_split.json"), FileNotFoundError,
     ["no_split.json", "data_prep.splits"]),
    ("split tampered", tampered_split, ValueError, ["split.json", "sha256"]),
    ("foreign checkpoint", foreign_checkpoint, ValueError, ["does not fit model='digits_cnn'"]),
    ("empty device", config_case(device=""), ValueError, ["device=''", "'cpu'"]),
    ("empty split_file", config_case(split_file=""), ValueError, ["split_file=''", "leave it out"]),
    ("empty data_root", config_case(data_root=""), ValueError, ["data_root=''"]),
    ("empty checkpoint_dir", lambda tmp: run(Config(profile="smoke", progress=False), checkpoint_dir=""), ValueError,
     ["checkpoint_dir=''"]),
    ("resume, no checkpoint", lambda tmp: run(Config(profile="smoke", progress=False), checkpoint_dir=tmp / "ckpt",
                                              resume=True), ValueError, ["holds no checkpoint", "drop --resume"]),
    ("cli empty checkpoint dir", cli_case("--checkpoint-dir", ""), SystemExit, ["checkpoint_dir=''"]),
    ("cli empty device", cli_case("--device", ""), SystemExit, ["device=''"]),
    ("cli resume, no checkpoint", cli_case("--resume"), SystemExit, ["holds no checkpoint"]),
    ("cli imbalance", cli_case("--imbalance", "0"), SystemExit, []),
    ("cli option syntax", cli_case("--option", "focal_gamma"), SystemExit, ["KEY=VALUE"]),
    ("cli type", cli_case("--epochs", "three"), SystemExit, []),
    ("prep noise rate", prep_case("data_prep.splits", "--noise-kind", "uniform", "--noise-rate", "1.5", "--out",
                                  "s.json"), RuntimeError, ["noise_rate=1.5"]),
    ("prep imbalance", prep_case("data_prep.splits", "--imbalance", "0.1", "--out", "s.json"), RuntimeError,
     ["imbalance", "0.1"]),
    ("prep dataset", prep_case("data_prep.cifar", "--dataset", "cifar1000", "--root", "r"), RuntimeError,
     ["cifar1000"]),
    ("notebook env profile", notebook_case(env_profile="fast"), ValueError, ["profile='fast'", "METAKIT_PROFILE"]),
    ("notebook seed", notebook_case(env_profile="smoke", seed="zero"), (TypeError, ValueError), ["seed='zero'"]),
    ("notebook imbalance", notebook_case(env_profile="smoke", imbalance=float("nan")), ValueError, ["imbalance=nan"]),
]


PLANTS = {tampered_split: 1, foreign_checkpoint: 1}


@pytest.mark.parametrize("call,exception,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named_and_leaves_no_file(tmp_path, capsys, call, exception, words):
    before = set(tmp_path.rglob("*"))
    with pytest.raises(exception) as err:
        call(tmp_path)
    message = str(err.value) + capsys.readouterr().err
    for word in words:
        assert word in message, message
    written = sorted(p.relative_to(tmp_path) for p in set(tmp_path.rglob("*")) - before if p.is_file())
    planted = PLANTS.get(call, 0)  # the tampered split / forged checkpoint the case itself put there
    assert len(written) == planted, f"left behind: {written}"


def test_at_least_twenty_cases():
    assert len(CASES) >= 20
