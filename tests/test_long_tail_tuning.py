"""The long-tail tuning study: every method gets the same number of values, chosen on validation only."""
import dataclasses

import pandas as pd

from metakit.studies import Plan, run_study, write_study
from metakit.studies.long_tail_tuning import GRID, SETTINGS, STUDY, choose


def test_every_method_gets_at_most_four_values_on_every_tuning_setting_beside_ce():
    assert all(1 <= len(values) <= 4 for values in GRID.values())
    runs = STUDY.rows(Plan("laptop", (0,)))
    assert len(runs) == len(SETTINGS) * (1 + sum(len(v) for v in GRID.values()))
    mwnet = [r.config.resolve() for r in runs if r.config.method == "mwnet" and r.variant == "meta_lr_1e-05"]
    assert {(c.meta_lr, c.options["meta_optimizer"]) for c in mwnet} == {(1e-5, "sgd")}       # the official SGD 1e-5
    assert {(r.labels()["dataset"], r.labels()["setting"]) for r in runs} == {
        ("digits", "lt_if10"), ("digits", "lt_if20"), ("mnist1d", "lt_if100"), ("mnist1d", "lt_if10")}


def test_every_grid_value_builds_its_method():
    """Each value is a real option of its method (a typo would fail every run of that value)."""
    from metakit.methods import METHODS
    for run in STUDY.rows(Plan("smoke", (0,))):
        c = run.config.resolve()
        METHODS[c.method](4, [40, 20, 10, 5], c, **c.options)


def test_the_choice_is_made_on_validation_never_on_test(tmp_path):
    def job(config):   # "test_wins" is best on test everywhere, "val_wins" on validation
        name = config.options.get("focal_gamma")
        val = {1.0: 1.0, 0.5: 3.0, 2.0: 0.0, 3.0: 0.0}.get(name, 0.0)
        test = {1.0: 0.0, 0.5: 0.0, 2.0: 9.0, 3.0: 0.0}.get(name, 0.0)
        return {"val_acc": 50.0 + val + config.seed, "test_acc": 50.0 + test + config.seed, "seconds": 0.0}

    study = dataclasses.replace(STUDY, job=job)
    df = run_study(study, Plan("smoke", (0, 1), {"methods": ["focal"]}), tmp_path / "t.csv")
    ranked = choose(df)
    assert ranked.loc[ranked.chosen, "variant"].tolist() == ["focal_gamma_0.5"]          # not focal_gamma_2 (test)
    text = write_study(study, df, tmp_path / "t.md")
    assert "| focal | focal_gamma_0.5 | +3.00 | +0.00 | 4 | yes |" in text
    findings = (tmp_path / "t_findings.md").read_text()
    assert "| focal:focal_gamma_0.5 beats ce | digits | lt_if10 | val_acc | +3.00 [+3.00, +3.00] | 2 | holds |" in findings
