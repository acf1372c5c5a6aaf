"""Findings are computed: committed tables regenerate from their CSVs, verdicts follow the interval, the README is generated."""
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from metakit.studies import STUDIES, get_study
from metakit.studies.committed import BEGIN, COMMITTED, END, findings_pages, main, regenerate, split_markdown
from metakit.studies.findings import Claim, judge, tally

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, csv", COMMITTED, ids=[csv for _, csv in COMMITTED])
def test_every_committed_table_regenerates_identically_from_its_csv(name, csv):
    committed, now = regenerate(ROOT / "results", csv)
    assert now == committed


def test_the_findings_pages_and_the_readme_lines_are_up_to_date(capsys):
    assert main(ROOT / "results", ROOT / "README.md", check=True) == 0, capsys.readouterr().out


def test_a_stale_readme_is_caught_and_rewritten(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{BEGIN}\n- a line typed by hand: MFM +9.9\n{END}\n")
    results = tmp_path / "results"
    for _, csv in COMMITTED[:1]:
        (results / csv).parent.mkdir(parents=True)
        for suffix in (".csv", ".md"):
            (results / csv).with_suffix(suffix).write_bytes((ROOT / "results" / csv).with_suffix(suffix).read_bytes())
    assert main(results, readme, check=True) == 1
    assert main(results, readme) == 0 and main(results, readme, check=True) == 0
    text = readme.read_text()
    assert "typed by hand" not in text and "mfm beats ce" in text
    page, line = next(iter(findings_pages(results).values()))
    assert line in text and "| mfm beats ce | mnist1d | lt_if100 | test_acc |" in page


def _rows(a, b, setting="s"):
    return pd.DataFrame({"dataset": "d", "setting": setting, "method": ["x"] * len(a) + ["y"] * len(b), "variant": "",
                         "seed": list(range(len(a))) + list(range(len(b))), "test_acc": a + b})


def test_a_verdict_is_the_paired_t_interval_against_the_margin_never_the_mean():
    a, b = [74.0, 75.5, 77.0, 73.0, 76.0], [70.0, 71.0, 72.5, 69.5, 71.0]
    d = [x - y for x, y in zip(a, b)]
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)            # an independent computation of the interval
    judged = judge([Claim("x", "y", "d", "s", margin) for margin in (0.0, 4.0, 6.0)], _rows(a, b))
    assert judged["mean"].tolist() == pytest.approx([sum(d) / 5] * 3)
    assert judged["low"].tolist() == pytest.approx([ci.low] * 3) and judged["high"].tolist() == pytest.approx([ci.high] * 3)
    assert judged["verdict"].tolist() == ["holds", "not separated", "fails"]   # low > 0; 4 inside; high < 6
    assert judged["n"].tolist() == [5, 5, 5] and tally(judged) == "holds 1, not separated 1, fails 1 of 3"


def test_a_large_mean_with_a_wide_interval_is_not_separated():
    judged = judge([Claim("x", "y", "d", "s")], _rows([90.0, 60.0, 95.0], [70.0, 70.0, 70.0]))
    assert judged["mean"][0] > 10 and judged["low"][0] < 0 and judged["verdict"][0] == "not separated"


def test_one_seed_is_too_few_to_judge_and_a_filter_keeps_momentum_blocks_apart():
    judged = judge([Claim("x", "y", "d", "s")], _rows([80.0], [70.0]))
    assert judged["verdict"][0] == "too few seeds to tell" and math.isnan(judged["low"][0])
    rows = pd.concat([_rows([80.0, 81, 82], [70.0, 70, 71]).assign(momentum=0.0),
                      _rows([60.0, 61, 62], [70.0, 70, 71]).assign(momentum=0.9)])
    by_block = judge([Claim("x", "y", "d", "s", where=(("momentum", m),)) for m in (0.0, 0.9)], rows)
    assert by_block["verdict"].tolist() == ["holds", "fails"] and by_block["claim"][1] == "x beats y, momentum 0.9"


def test_every_study_declares_claims_its_own_tables_can_judge():
    for name, csv in COMMITTED:
        study = get_study(name)
        from metakit.studies.grid import read_csv
        df = read_csv(ROOT / "results" / csv, momentum=study.momentum)
        claims = study.claims(df)
        assert claims and any(c.headline for c in claims), csv
    assert set(STUDIES) >= {name for name, _ in COMMITTED}


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150 and "make demo" in text and "make test" in text
    hand = text.split(BEGIN)[0] + text.split(END)[1]                # outside the generated block
    typed = re.findall(r"[+−-]\d+\.\d+|\d+\.\d+ ?%|± ?\d", hand)
    assert not typed, f"{typed}: a result outside the generated block (results come from the CSVs)"
    for link in [part.split(")")[0] for part in text.split("](")[1:]]:
        assert (ROOT / link).is_file(), link


def test_split_markdown_needs_the_made_by_line():
    head, body = split_markdown("## t\n\nMade by `x` at commit `y`.\n\n### body\n")
    assert head.endswith("Made by `x` at commit `y`.\n\n") and body == "### body\n"
    with pytest.raises(ValueError, match="no 'Made by' line"):
        split_markdown("## hand-written\n")
