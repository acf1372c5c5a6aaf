import math

import pandas as pd
import pytest
from scipy import stats

from metakit.teaching.verdicts import compare


def _rows(a, b, seeds_a=None, seeds_b=None, setting="lt_if100"):
    seeds_a = seeds_a or list(range(len(a)))
    seeds_b = seeds_b or list(range(len(b)))
    return pd.DataFrame({"dataset": "mnist1d", "setting": setting,
                         "method": ["mfm"] * len(a) + ["ce"] * len(b), "variant": "",
                         "seed": seeds_a + seeds_b, "test_acc": a + b})


def test_the_interval_is_the_paired_t_interval_not_the_two_sample_one():
    a, b = [74.0, 75.5, 77.0, 73.0, 76.0], [70.0, 71.0, 72.5, 69.5, 71.0]
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 4)
    half = stats.t.ppf(0.975, 4) * sd / math.sqrt(5)
    v = compare(_rows(a, b), "mfm", "ce")
    assert (v.n, v.mean) == (5, pytest.approx(mean))
    assert (v.low, v.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval()  # the unpaired reading, wider
    assert v.high - v.low < welch.high - welch.low


def test_ahead_behind_and_not_separated():
    assert compare(_rows([74.0, 75, 77], [70.0, 71, 72]), "mfm", "ce").says() == "ahead"
    assert compare(_rows([74.0, 75, 77], [70.0, 71, 72]), "ce", "mfm").says() == "behind"
    assert compare(_rows([71.0, 69, 72], [70.0, 71, 71]), "mfm", "ce").says() == "not separated"
    one = compare(_rows([74.0], [70.0]), "mfm", "ce")
    assert one.says() == "too few seeds to tell" and "nan" not in one.line()
    ahead = compare(_rows([74.0, 75, 77], [70.0, 71, 72]), "mfm", "ce")
    assert ahead.says(margin=10.0) == "behind"                     # the margin moves the bar


def test_only_seeds_both_ran_are_paired():
    v = compare(_rows([80.0, 74, 75], [70.0, 71], seeds_a=[9, 0, 1], seeds_b=[0, 1]), "mfm", "ce")
    assert (v.n, v.mean) == (2, pytest.approx(4.0))                # seed 9 has no partner


def test_target_is_judged_on_the_mean_and_reports_the_interval():
    v = compare(_rows([73.0, 74, 76], [70.0, 71, 72]), "mfm", "ce")   # deltas 3, 3, 4
    assert v.target(3.0).split(": ")[2].startswith("met")
    assert v.target(3.5).split(": ")[2].startswith("missed")
    assert "missed" in v.target(4.0) and "met" not in v.target(4.0).replace("mean", "")


def test_a_variant_row_is_named_method_colon_variant_and_several_settings_are_refused():
    rows = pd.concat([_rows([74.0, 75], [70.0, 71]), _rows([1.0, 1], [0.0, 0], setting="lt_if10")])
    rows.loc[(rows.setting == "lt_if10") & (rows.method == "mfm"), "variant"] = "meta_off"
    assert compare(rows, "mfm:meta_off", "ce", setting="lt_if10").mean == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lt_if10.*lt_if100|lt_if100.*lt_if10"):
        compare(rows, "mfm", "ce")
    with pytest.raises(ValueError, match="no column 'imbalance'"):
        compare(rows, "mfm", "ce", imbalance=10)


def test_no_common_seed_says_so_instead_of_a_verdict():
    v = compare(_rows([74.0], [70.0], seeds_a=[3], seeds_b=[0]), "mfm", "ce")
    assert v.n == 0 and "no seed ran both" in v.line() and "not measured yet" in v.target(3.0)


def test_a_second_metric_is_named_in_the_label_and_headlines_are_json_numbers():
    import json

    from metakit.teaching.verdicts import headlines

    rows = _rows([74.0, 75, 77], [70.0, 71, 72]).assign(test_acc_at_val=[75.0, 76, 78, 70, 71, 72])
    at_val = compare(rows, "mfm", "ce", metric="test_acc_at_val")
    assert at_val.where == "mnist1d lt_if100 (test_acc_at_val)" and at_val.mean == pytest.approx(5.333333)
    assert compare(rows, "mfm", "ce").where == "mnist1d lt_if100"
    with pytest.raises(ValueError, match="metric='val_acc' is not a column"):
        compare(rows, "mfm", "ce", metric="val_acc")
    one = compare(_rows([74.0], [70.0]), "mfm", "ce")
    entries = headlines([at_val, one])
    assert entries["mnist1d lt_if100: mfm vs ce"] == {"seeds": 1, "mean": 4.0, "low": None, "high": None,
                                                      "says": "too few seeds to tell"}
    assert entries["mnist1d lt_if100 (test_acc_at_val): mfm vs ce"]["says"] == "ahead"
    json.loads(json.dumps(entries, allow_nan=False))                   # no NaN reaches summary.json


def test_a_run_without_the_metric_pairs_with_no_seed():
    rows = _rows([74.0, 75, 77], [70.0, 71, 72]).assign(test_acc_at_val=[75.0, None, 78, 70, 71, 72])
    assert compare(rows, "mfm", "ce", metric="test_acc_at_val").n == 2
