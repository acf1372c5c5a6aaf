"""The learner store: every meta-learned network round-trips, every foreign file gets one clear error."""
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from metakit.experiments import Config
from metakit.learners import MLRSNet, Modulation, WeightNet
from metakit.learners.store import FORMAT, VERSION, load_learner, read_header, save_learner
from metakit.models import build_model


def _trained_like(learner: nn.Module) -> nn.Module:
    """Random weights (a fresh learner starts at the identity / base LR: a weak round-trip check)."""
    torch.manual_seed(0)
    for p in learner.parameters():
        nn.init.normal_(p)
    return learner


LEARNERS = {"weight_net": lambda: WeightNet(hidden=6, normalize="mean"),
            "lr_net": lambda: MLRSNet(10, hidden=5, gamma=0.2),
            "modulation": lambda: Modulation(["block1", "fc"], [4, 8], "net", 3)}


def _outputs(kind: str, learner: nn.Module) -> torch.Tensor:
    """An independent read of what the learner computes, from its public API."""
    x = torch.linspace(0.1, 3.0, 7, dtype=torch.float32)
    if kind == "weight_net":
        return learner.weights(x)
    if kind == "lr_net":
        return learner.response(x)
    return torch.cat([p.flatten() for p in learner.parameters()])


@pytest.mark.parametrize("kind", sorted(LEARNERS))
def test_every_learner_round_trips_with_its_kind_init_and_config(tmp_path, kind):
    learner = _trained_like(LEARNERS[kind]())
    config = Config(profile="smoke", method="mwnet").resolve()
    path = save_learner(learner, tmp_path / "l.pt", config=config, dataset="digits")
    loaded, header = load_learner(path, kind)
    assert type(loaded) is type(learner) and header["kind"] == kind
    assert header["format"] == FORMAT and header["version"] == VERSION
    assert header["config"]["method"] == "mwnet" and header["config"]["epochs"] == config.epochs
    assert header["metadata"] == {"dataset": "digits"}
    assert read_header(path, kind) == header
    for (name, a), (_, b) in zip(learner.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    torch.testing.assert_close(_outputs(kind, loaded), _outputs(kind, learner), rtol=0, atol=0)


def test_file_is_a_plain_dict_that_loads_weights_only(tmp_path):
    path = save_learner(WeightNet(hidden=4), tmp_path / "w.pt")
    blob = torch.load(path, weights_only=True)
    assert sorted(blob) == ["config", "format", "init", "kind", "metadata", "state_dict", "version"]
    assert blob["init"] == {"hidden": 4, "normalize": "sum"} and blob["config"] is None


class Boobytrap:
    """Unpickling this would create a file: a stand-in for arbitrary code in a pickle."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _foreign_files(tmp_path: Path) -> dict[str, Path]:
    files = {"text": Path("/etc/passwd")}
    files["pickle"] = tmp_path / "trap.pkl"
    files["pickle"].write_bytes(pickle.dumps(Boobytrap(tmp_path / "executed")))
    files["torch_code"] = tmp_path / "trap.pt"
    torch.save({"net": Boobytrap(tmp_path / "executed")}, files["torch_code"])
    files["checkpoint"] = tmp_path / "model.pt"
    torch.save(build_model("mlp", 10, (1, 8, 8)).state_dict(), files["checkpoint"])
    files["weight_net"] = save_learner(WeightNet(hidden=4), tmp_path / "w.pt")
    blob = torch.load(save_learner(MLRSNet(10, hidden=4, gamma=0.2), tmp_path / "new.pt"), weights_only=True)
    files["newer"] = tmp_path / "newer.pt"
    torch.save({**blob, "version": VERSION + 1}, files["newer"])
    files["truncated"] = tmp_path / "cut.pt"
    files["truncated"].write_bytes(files["weight_net"].read_bytes()[:200])
    return files


EXPECTED = {"text": "torch.load.weights_only=True. refused it", "pickle": "refused it",
            "torch_code": "refused it", "checkpoint": "not a metakit learner file .a dict with keys",
            "weight_net": "holds a weight_net .a Meta-Weight-Net weight net., expected a lr_net",
            "newer": f"format version {VERSION + 1}, newer than this metakit reads .{VERSION}.; upgrade",
            "truncated": "refused it"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_foreign_file_is_one_value_error_naming_it_and_what_was_expected(tmp_path, name):
    path = _foreign_files(tmp_path)[name]
    with pytest.raises(ValueError, match=EXPECTED[name]) as err:
        load_learner(path, "lr_net", argument="schedule_file")
    message = str(err.value)
    assert f"schedule_file={str(path)!r}" in message and "\n" not in message
    assert name == "newer" or "lr_net" in message
    assert not (tmp_path / "executed").exists()


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="modulator=.*nope.pt.* does not exist; expected a modulation"):
        load_learner(tmp_path / "nope.pt", "modulation", argument="modulator")


def test_an_unknown_learner_is_refused_by_type():
    with pytest.raises(TypeError, match="learner=Linear"):
        save_learner(nn.Linear(1, 1), "unused.pt")


def test_cli_names_a_foreign_schedule_file_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "metakit", "run", "--method", "mlrsnet", "--option",
                           'schedule_file="/etc/passwd"'], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: schedule_file='/etc/passwd' is not a metakit learner")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("method,kind", [("ce", None), ("mwnet", "weight_net"), ("mlrsnet", "lr_snapshots"),
                                         ("mfm", "modulation")])
def test_result_learner_is_the_trained_learner_and_saves_with_its_config(tmp_path, method, kind):
    import dataclasses

    from metakit.experiments import run
    r = run(Config(method=method, profile="smoke", epochs=1, progress=False, device="cpu",
                   options={"meta_start": 0.0} if method == "mfm" else {}))
    if kind is None:
        assert r.learner is None and r.method.learner is None
        return
    assert r.learner is r.method.learner
    if kind == "lr_snapshots":   # MLR-SNet keeps one snapshot an epoch; the last is the meta-step's net
        assert len(r.learner) == 1 and torch.equal(r.learner.last.head.weight, r.method.current_meta_step().learner.head.weight)
    else:
        assert r.learner is r.method.current_meta_step().learner
    loaded, header = load_learner(save_learner(r.learner, tmp_path / "l.pt", config=r.config), kind)
    assert header["config"] == {k: v for k, v in dataclasses.asdict(r.config).items()}
    for (name, a), (_, b) in zip(r.learner.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a.cpu(), b), name


def test_a_file_of_the_retired_formats_says_so(tmp_path):
    net = MLRSNet(10, hidden=4, gamma=0.2)
    torch.save({"metadata": {"format": "metakit.learners.lr_net/1", "hidden": 4, "num_classes": 10},
                "state": net.state_dict()}, tmp_path / "old_lr.pt")
    with pytest.raises(ValueError, match="retired format 'metakit.learners.lr_net/1'"):
        load_learner(tmp_path / "old_lr.pt", "lr_net")
    torch.save({"state_dict": {}, "meta": {"version": 1, "model": "mlp"}}, tmp_path / "old_mod.pt")
    with pytest.raises(ValueError, match="retired format 'metakit modulator/1'"):
        load_learner(tmp_path / "old_mod.pt", "modulation")
