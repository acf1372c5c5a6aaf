"""A committed table read back in a notebook: its markdown, a missing file's one line, one row rerun."""
import pandas as pd
import pytest

from metakit.studies import long_tail as tables, noise as noise_tables
from metakit.studies.grid import columns, read_csv
from metakit.teaching.results import csv_path, find_row, make_command, missing_line, rerun_line


def write_table(folder, kind):
    n = 4
    df = pd.DataFrame({"dataset": "mnist1d", "setting": "lt_if100" if kind == "long-tail" else "noise_uniform_40",
                       "method": ["ce", "ce", "mwnet", "mwnet"], "variant": "", "seed": [0, 1, 0, 1],
                       "test_acc": [70.0, 72.0, 73.0, 76.0], "val_acc": 1.0, "many_acc": 1.0, "medium_acc": 1.0,
                       "few_acc": 1.0, "seconds": 1.0, "commit": "abc1234", "profile": "laptop", "epochs": 20})
    if kind == "noise":
        df.insert(5, "momentum", [0.9] * n)
    path = csv_path(folder, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    df[[c for c in columns(kind == "noise")] + ["profile", "epochs"]].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["long-tail", "noise"])
def test_a_committed_table_renders_mean_std_and_paired_deltas(tmp_path, kind):
    path = write_table(tmp_path / "results", kind)
    rows = read_csv(path, momentum=kind == "noise")
    module = tables if kind == "long-tail" else noise_tables
    text = module.render_markdown(module.summarise(rows))
    assert len(rows) == 4 and "| ce | 71.00 ± 1.41 |" in text and "| mwnet | +3.50 [" in text   # paired, seeds 0, 1


@pytest.mark.parametrize("kind", ["long-tail", "noise"])
def test_a_missing_table_gives_one_line_with_the_command(tmp_path, kind):
    assert read_csv(csv_path(tmp_path / "nothing", kind), momentum=kind == "noise").empty
    text = missing_line(tmp_path / "nothing", kind)
    assert "\n" not in text and f"python -m metakit table {kind} --profile laptop --datasets mnist1d" in text
    assert str(csv_path(tmp_path / "nothing", kind)) in text


def test_command_is_relative_to_the_repository_root():
    from metakit.teaching.results import REPO_ROOT
    assert make_command(REPO_ROOT / "results" / "mnist1d", "long-tail").endswith(
        "--imbalances 100 50 10 --out results/mnist1d")


def test_find_row_wants_exactly_one_match(tmp_path):
    rows = read_csv(write_table(tmp_path, "long-tail"))
    assert find_row(rows, method="mwnet", seed=1)["test_acc"] == 76.0
    with pytest.raises(ValueError, match="2 rows match {'method': 'ce'}"):
        find_row(rows, method="ce")
    with pytest.raises(ValueError, match="0 rows match"):
        find_row(rows, method="focal", seed=0)
    with pytest.raises(ValueError, match=r"labels \['imbalance'\] are not columns"):
        find_row(rows, imbalance=100)


def test_rerun_line_says_equal_different_or_not_comparable():
    row = {"method": "ce", "dataset": "mnist1d", "setting": "noise_uniform_40", "seed": 0, "test_acc": 61.3,
           "profile": "laptop", "commit": "abc1234"}
    assert rerun_line(row, 61.3, "laptop").endswith("exactly equal")
    assert "differ by +0.1000 points" in rerun_line(row, 61.4, "laptop") and "abc1234" in rerun_line(row, 61.4, "laptop")
    assert "the profiles differ" in rerun_line(row, 61.3, "smoke")


def test_the_transfer_tables_command_has_no_datasets_flag_and_parses():
    from metakit.cli import build_parser
    command = make_command("results/mfm", "mfm-transfer")
    assert "--datasets" not in command and "--targets if50 variant if10 width" in command
    args = build_parser().parse_args(command.split()[3:])
    assert (args.kind, args.targets, args.methods) == ("mfm-transfer", ["if50", "variant", "if10", "width"],
                                                       ["ce", "mfm", "mfm_frozen", "mfm_init"])


def test_the_schedule_transfer_command_is_a_schedule_table_one_and_parses():
    from metakit.cli import build_parser
    command = make_command("results/digits", "schedule-transfer", dataset="digits")
    assert command.endswith("--out results/digits/schedule_transfer_laptop.csv")
    args = build_parser().parse_args(command.split()[3:])
    assert (args.command, args.task, args.source, args.seeds) == ("schedule-table", "transfer", "digits",
                                                                  [0, 1, 2, 3, 4])


def test_rerun_row_reuses_a_live_run_of_the_same_config_and_trains_otherwise(monkeypatch):
    import types

    import metakit.experiments
    from metakit.experiments import Config
    from metakit.teaching.results import rerun_row

    trained = []
    monkeypatch.setattr(metakit.experiments, "run",
                        lambda c: trained.append(c) or types.SimpleNamespace(metrics={"test_acc": 88.0}))
    row = {"method": "ce", "dataset": "digits", "setting": "lt_if20", "seed": 0, "test_acc": 88.0,
           "profile": "laptop", "commit": "abc1234"}
    config = Config(method="ce", dataset="digits", imbalance=20, profile="laptop")
    same = types.SimpleNamespace(config=Config(method="ce", dataset="digits", imbalance=20.0, profile="laptop",
                                               progress=False).resolve(), metrics={"test_acc": 88.0})
    line = rerun_row(row, config, "laptop", live=same)            # progress and 20 vs 20.0 change no number
    assert trained == [] and "exactly equal" in line and "reused, not trained again" in line
    other = types.SimpleNamespace(config=Config(method="ce", dataset="digits", imbalance=20, profile="laptop",
                                                seed=1).resolve(), metrics={"test_acc": 50.0})
    line = rerun_row(row, config, "laptop", live=other)           # another seed: the row is trained
    assert trained == [config] and line.endswith("exactly equal") and "reused" not in line
    assert "reused" not in rerun_row(row, config, "laptop") and len(trained) == 2
