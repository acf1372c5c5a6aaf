import pandas as pd
import torch
import pytest


def schedule_transfer(source, momentum, names, seeds, profile, entries=None, csv_path=None, overrides=None):
    plan = Plan(profile, seeds, {"source": source, "momentum": momentum, "variations": names, "entries": entries},
                overrides or {})
    return run_study(STUDY, plan, csv_path)

from metakit.cli import main
from metakit.studies.grid import read_csv
from metakit.studies.schedules import frozen_options, table_config
from metakit.studies import Plan, rerun_config, run_study
from metakit.studies.schedule_transfer import (STUDY, entries_for, schedule_path, target_config, transfer_runs,
                                               tuned_lrs, variant_schedule, variations)
from metakit.studies.transfer_verdicts import render_verdicts, verdicts
from metakit.learners.lr_net import load_schedule


@pytest.mark.parametrize("source, other, models", [("digits", "mnist1d", {"mlp", "resnet32"}),
                                                   ("mnist1d", "digits", {"cnn1d", "mlp"})])
def test_each_variation_changes_one_thing_by_its_stated_factor(source, other, models):
    base = table_config("cifar10", "fixed", "laptop", dataset=source).resolve()
    table = variations(source, "laptop")
    resolved = {name: target_config(source, 0.0, fields, "cosine", 0, "laptop", "s.pt").resolve()
                for name, fields in table.items()}
    assert resolved["same"] == target_config(source, 0.0, {}, "cosine", 0, "laptop", "s.pt").resolve()
    assert resolved["batch_x0.5"].batch_size * 2 == resolved["batch_x2"].batch_size // 2 == base.batch_size
    assert resolved["epochs_x0.5"].epochs * 2 == resolved["epochs_x2"].epochs // 2 == base.epochs
    assert {c.model for n, c in resolved.items() if n.startswith("arch_")} == models
    assert base.model not in models
    moved = resolved["dataset"]
    assert moved.dataset == other and moved.model == table_config("cifar10", "fixed", "laptop", dataset=other).resolve().model
    for kind in ("uniform", "flip"):
        assert (resolved[f"noise_{kind}_40"].noise_kind, resolved[f"noise_{kind}_40"].noise_rate) == (kind, 0.4)
    narrow = {n: c.width for n, c in resolved.items() if c.dataset == "mnist1d" and c.model == "resnet1d"}
    assert list(narrow.values()) == [16] * len(narrow) and len(narrow) == (1 if source == "digits" else 7)
    assert all(c.width is None for n, c in resolved.items() if n.startswith("arch_"))
    for name, c in resolved.items():   # everything else stays the source task's
        assert (c.lr, c.momentum, c.weight_decay, c.schedule) == (base.lr, 0.0, base.weight_decay, "cosine"), name


def test_the_frozen_row_runs_the_staged_meta_test_and_final_net_is_a_variant(tmp_path):
    df = schedule_transfer("digits", 0.0, ["same"], [0], "smoke", ["mlrsnet", "fixed"], tmp_path / "t.csv",
                           {"epochs": 1})
    path = schedule_path(tmp_path, "digits", 0.0, "smoke", "t")
    assert path.is_file() and frozen_options(path) == {"schedule_file": str(path)}      # snapshots: staged
    staged = target_config("digits", 0.0, {}, "mlrsnet", 0, "smoke", path)
    final = target_config("digits", 0.0, {}, "mlrsnet_final_net", 0, "smoke", path)
    assert staged.options == frozen_options(path) and final.options == {"schedule_file": str(path),
                                                                      "variant": "final_net"}
    runs = transfer_runs("digits", 0.0, ["same"], [0], "smoke", ["mlrsnet_final_net", "mlrsnet_batch_stats"], path)
    assert [(r.method, r.variant) for r in runs] == [("sched_mlrsnet", "final_net"), ("sched_mlrsnet", "batch_stats_loss")]
    assert runs[1].config.options == {"schedule_file": str(path), "variant": "batch_stats_loss"}
    for r in runs:   # an ablation row's CSV fields lead back to its config
        row = {"dataset": "digits", "setting": r.setting, "method": r.method, "variant": r.variant, "seed": 0,
               "momentum": 0.0, "profile": "smoke", "epochs": r.config.resolve().epochs}
        assert rerun_config(STUDY, row, folder=tmp_path / "t.csv") == r.config
    tune = df[df.setting == "transfer_tune"]     # the hand schedule's base LR, chosen on the source's validation
    assert sorted(set(tune.variant)) == ["lr_0.03", "lr_0.1", "lr_0.3", "lr_1"] and sorted(set(tune.seed)) == [0, 1, 2]
    best = tune.groupby("variant").val_acc.mean().idxmax()
    fixed = df[(df.setting == "transfer_same") & (df.method == "sched_fixed")]
    assert rerun_config(STUDY, fixed.iloc[0].to_dict()).lr == float(best.removeprefix("lr_"))   # carried to the row
    assert df[df.setting != "transfer_tune"][["setting", "method", "momentum"]].values.tolist() == [
        ["transfer_source", "sched_mlrsnet", 0.0], ["transfer_same", "sched_mlrsnet", 0.0],
        ["transfer_same", "sched_fixed", 0.0]]


def test_momentum_blocks_and_bad_arguments():
    assert entries_for(0.0) == ["mlrsnet", "fixed", "multistep", "exp", "cosine", "sgdr"]
    assert entries_for(0.9) == ["mlrsnet", "cosine", "multistep"]
    with pytest.raises(ValueError, match="momentum=0.5"):
        entries_for(0.5)
    with pytest.raises(ValueError, match="entries='fixed'"):
        entries_for(0.9, ["fixed"])                      # the 0.9 block has no fixed-LR row
    with pytest.raises(ValueError, match="'lm' at momentum=0.9"):
        schedule_transfer("digits", 0.9, ["lm"], [0], "smoke")


def test_default_variations_leave_the_lm_out_at_momentum_09(tmp_path):
    # the 0.9 block's default is every image variation; asking for the LM there is the error above
    df = schedule_transfer("digits", 0.9, None, [0], "smoke", ["cosine"], tmp_path / "t.csv", {"epochs": 1})
    image_settings = {f"transfer_{name}" for name in variations("digits", "smoke")}
    assert set(df.setting) == image_settings | {"transfer_source", "transfer_tune"} and not df.momentum.ne(0.9).any()
    with pytest.raises(ValueError, match="variations='batch_x3'"):
        transfer_runs("digits", 0.0, ["batch_x3"], [0], "smoke", None, "s.pt")


def test_cli_end_to_end_resumes_and_relearns_a_missing_schedule(tmp_path, capsys):
    out = tmp_path / "digits" / "schedule_transfer_smoke.csv"
    argv = ["schedule-table", "transfer", "--source", "digits", "--profile", "smoke", "--seeds", "0", "1",
            "--entries", "mlrsnet", "fixed", "--variations", "same", "lm", "--epochs", "1", "--out", str(out)]
    assert main(argv) == 0
    rows = read_csv(out, momentum=True)
    assert len(rows) == 2 + 3 * 4 + 2 * 2 + 2 * 2    # a source a seed, the fixed LR's tuning, 2 seeds × 2 entries, images and LM
    lm = rows[rows.setting == "transfer_lm"]
    assert set(lm.dataset) == {"text"} and lm.test_ppl.gt(1).all() and lm.test_acc.isna().all()
    assert "### Verdicts" in out.with_suffix(".md").read_text()
    schedule_path(out.parent, "digits", 0.0, "smoke").unlink()
    assert main(argv) == 0                                      # every row is there: nothing reruns ...
    again = read_csv(out, momentum=True)
    pd.testing.assert_series_equal(again.seconds, rows.seconds)
    assert schedule_path(out.parent, "digits", 0.0, "smoke").is_file()   # ... but the lost schedule is relearned
    capsys.readouterr()
    assert main(["schedule-table", "transfer", "--profile", "smoke", "--out", str(out)]) == 2
    assert "needs --source" in capsys.readouterr().err
    assert main(["schedule-table", "cifar10", "--source", "digits", "--out", str(tmp_path / "x.csv")]) == 2
    assert "--source does not apply to schedule-table cifar10" in capsys.readouterr().err
    assert main(["study", "schedule_transfer", "--source", "digits", "--profile", "smoke", "--seeds", "0",
                 "--entries", "mlrsnet", "fixed", "--variations", "same", "--epochs", "1", "--out", str(out)]) == 0
    findings = out.with_name(out.stem + "_findings.md").read_text()
    assert "| sched_mlrsnet within 1 of sched_fixed, momentum 0 | digits | transfer_same | test_acc |" in findings


def _rows(**acc):
    rows = []
    for method, (test, val) in acc.items():
        for seed, (t, v) in enumerate(zip(test, val)):
            rows.append({"dataset": "d", "setting": "transfer_same", "momentum": 0.0, "method": f"sched_{method}",
                         "variant": "", "seed": seed, "test_acc": t, "val_acc": v, "test_acc_at_val": t})
    return pd.DataFrame(rows)


def test_the_best_hand_schedule_is_chosen_on_validation_not_test():
    rows = _rows(mlrsnet=([80.0, 81, 82], [80.0, 81, 82]), fixed=([70.0, 75, 71], [70.0, 70, 70]),
                 cosine=([90.0, 90, 90], [60.0, 60, 60]), sgdr=([81.0, 82, 83], [85.0, 85, 85]))
    v = verdicts(rows).iloc[0]
    assert v.best_hand == "sched_sgdr"                          # cosine has the best test, but not the best val
    assert float(v.vs_best) == pytest.approx(-1.0) and bool(v.best_met)
    d = pd.Series([10.0, 6, 11])                                # mlrsnet − fixed by seed: mean 9, sd 2.65
    assert float(v.vs_fixed) == pytest.approx(d.mean()) and float(v.vs_fixed_std) == pytest.approx(d.std())
    assert bool(v.fixed_met) == (d.mean() > 2 * d.std())        # 9 > 5.29: met
    noisy = _rows(mlrsnet=([80.0, 81, 82], [80.0, 81, 82]), fixed=([70.0, 80, 82], [70.0, 70, 70]))
    w = verdicts(noisy).iloc[0]                                 # deltas 10, 1, 0: mean 3.67 < 2 sd = 11.0
    assert float(w.vs_fixed) > 0 and not bool(w.fixed_met)


def test_the_language_model_verdict_is_a_perplexity_ratio_against_the_best_on_validation():
    rows = pd.DataFrame({"dataset": "text", "setting": "transfer_lm", "momentum": 0.0, "variant": "",
                         "method": ["sched_mlrsnet"] * 2 + ["sched_fixed"] * 2 + ["sched_cosine"] * 2,
                         "seed": [0, 1] * 3, "test_ppl": [6.3, 6.3, 7.0, 7.0, 6.0, 6.0],
                         "valid_ppl_best": [6.3, 6.3, 7.0, 7.0, 6.0, 6.0]})
    v = verdicts(rows).iloc[0]
    assert v.best_hand == "sched_cosine" and float(v.ppl_ratio) == pytest.approx(1.05) and bool(v.best_met)
    rows.loc[rows.method == "sched_mlrsnet", "test_ppl"] = 6.4
    assert not bool(verdicts(rows).iloc[0].best_met)            # 6.4 / 6.0 = 1.067 > 1.05


def test_rerun_config_rebuilds_every_image_rows_config(tmp_path):
    out = tmp_path / "t.csv"
    names = ["same", "epochs_x2", "dataset", "arch_mlp"]
    rows = schedule_transfer("digits", 0.0, names, [0, 1], "smoke", ["mlrsnet", "cosine", "mlrsnet_final_net"], out,
                             {"epochs": 1})
    runs = transfer_runs("digits", 0.0, names, [0, 1], "smoke", ["mlrsnet", "cosine", "mlrsnet_final_net"],
                         schedule_path(tmp_path, "digits", 0.0, "smoke", "t"), {"epochs": 1}, tuned_lrs(rows, 0.0))
    image = rows[~rows.setting.isin(["transfer_source", "transfer_tune"])].to_dict("records")
    assert len(image) == len(runs) == 4 * 2 * 3
    for row, want in zip(image, runs):
        assert rerun_config(STUDY, row).canonical() == want.config.canonical(), row              # from its config
        if row["seed"] == 0 and row["method"] == "sched_mlrsnet":   # from its labels alone: the seed-0 source
            assert rerun_config(STUDY, dict(row, config=None), folder=out) == want.config, row
    with pytest.raises(ValueError, match="transfer_source.*not an image target row"):
        rerun_config(STUDY, dict(rows.iloc[0].to_dict(), config=None), folder=out)


def test_each_frozen_variant_gets_its_own_verdict_against_the_default_hand_rows():
    learned = {"": [70.0, 20.0, 90.0], "batch_stats_loss": [97.5, 98.5, 98.0]}
    hand = [98.0, 99.0, 98.5]
    rows = [{"dataset": "d", "setting": "transfer_arch_resnet32", "momentum": 0.0, "method": "sched_mlrsnet",
             "variant": v, "seed": s, "test_acc": a, "val_acc": a, "test_acc_at_val": a}
            for v, accs in learned.items() for s, a in enumerate(accs)]
    rows += [{"dataset": "d", "setting": "transfer_arch_resnet32", "momentum": 0.0, "method": "sched_fixed",
              "variant": "", "seed": s, "test_acc": a, "val_acc": a, "test_acc_at_val": a} for s, a in enumerate(hand)]
    table = verdicts(pd.DataFrame(rows)).set_index("variant")
    for v, accs in learned.items():
        assert table.loc[v, "vs_best"] == pytest.approx(sum(accs) / 3 - sum(hand) / 3)
    assert not table.loc["", "best_met"] and table.loc["batch_stats_loss", "best_met"]
    assert "| transfer_arch_resnet32 (batch_stats_loss) |" in render_verdicts(table.reset_index())


def test_momentum_lookahead_meta_trains_its_own_source_and_its_rows_read_it(tmp_path):
    out = tmp_path / "t.csv"
    df = schedule_transfer("digits", 0.9, ["same"], [0], "smoke", ["mlrsnet_momentum_lookahead"], out, {"epochs": 2})
    assert df[df.setting != "transfer_tune"][["setting", "method", "variant"]].values.tolist() == [
        ["transfer_source", "sched_mlrsnet", "meta_train"],
        ["transfer_source", "sched_mlrsnet", "meta_train_momentum_lookahead"],
        ["transfer_same", "sched_mlrsnet", "momentum_lookahead"]]
    default = schedule_path(tmp_path, "digits", 0.9, "smoke", "t")
    own = variant_schedule(default, "momentum_lookahead")
    assert own.parent == default.parent and own.name == "t_digits_m0.9_momentum_lookahead.pt"
    first, second = (load_schedule(p)[0].state_dict() for p in (default, own))
    assert any(not torch.equal(first[k], second[k]) for k in first)   # meta-trained differently
    row = df.iloc[2].to_dict() | {"profile": "smoke", "epochs": 2, "config": None}
    assert rerun_config(STUDY, row, folder=out).options == {"schedule_file": str(own), "variant": "momentum_lookahead"}
    with pytest.raises(ValueError, match=r"^entries='mlrsnet_momentum_lookahead' at momentum=0: .*--momentum 0\.9\.$"):
        entries_for(0.0, ["mlrsnet_momentum_lookahead"])
