import dataclasses
import json
import shutil
import tarfile

import numpy as np
import pytest

from _tiny_cifar import make_tarball, write_tiny
from data_prep import cifar as prep
from data_prep import splits as split_cli
from metakit.data import load_source
from metakit.data.cifar import CIFAR, load_cifar
from metakit.data.splits import SplitSpec, load_split, make_split


@pytest.fixture
def tiny_archive(tmp_path, monkeypatch):
    """A tiny CIFAR-10 tarball served from a file:// URL, and the table that matches it."""
    src = tmp_path / "src"
    expected = write_tiny(src, "cifar10")
    archive = tmp_path / "server" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    table = dataclasses.replace(expected["table"], url=archive.as_uri(),
                                archive_md5=make_tarball(src, "cifar-10-batches-py", archive))
    monkeypatch.setitem(CIFAR, "cifar10", table)
    return archive, expected


def test_download_extracts_verifies_and_loads(tiny_archive, tmp_path, capsys):
    _, expected = tiny_archive
    root = tmp_path / "data"
    assert prep.main(["--root", str(root), "--dataset", "cifar10"]) == 0
    out = capsys.readouterr().out
    assert "downloading file://" in out and "extracted 7 verified files" in out
    assert np.array_equal(load_cifar("cifar10", root).train_y, expected["train_y"])
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]  # no temp left


def test_present_and_verified_downloads_nothing(tiny_archive, tmp_path, capsys, monkeypatch):
    root = tmp_path / "data"
    prep.main(["--root", str(root), "--dataset", "cifar10"])
    capsys.readouterr()
    monkeypatch.setattr(prep, "fetch", lambda *a, **k: pytest.fail("fetched although the files were verified"))
    assert prep.main(["--root", str(root), "--dataset", "cifar10"]) == 0
    assert "match their MD5; nothing to download" in capsys.readouterr().out


def test_corrupt_file_is_replaced_from_the_cached_archive(tiny_archive, tmp_path, capsys, monkeypatch):
    root = tmp_path / "data"
    prep.main(["--root", str(root), "--dataset", "cifar10"])
    (root / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"garbage")
    monkeypatch.setattr(prep, "fetch", lambda *a, **k: pytest.fail("the cached archive was verified"))
    assert prep.main(["--root", str(root), "--dataset", "cifar10"]) == 0
    assert "1 of 7 files missing or failing their MD5 (data_batch_2)" in capsys.readouterr().out
    load_cifar("cifar10", root)


def test_archive_with_wrong_md5_is_not_kept(tiny_archive, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(CIFAR, "cifar10", dataclasses.replace(CIFAR["cifar10"], archive_md5="0" * 32))
    root = tmp_path / "data"
    assert prep.main(["--root", str(root), "--dataset", "cifar10"]) == 1
    assert f"expected {'0' * 32}" in capsys.readouterr().err
    assert list(root.iterdir()) == []                                              # no archive, no temp file


@pytest.mark.parametrize("member", ["../evil", "/tmp/metakit_evil_absolute", "cifar-10-batches-py/../../evil"])
def test_archive_escaping_the_target_is_refused(tiny_archive, tmp_path, monkeypatch, capsys, member):
    archive, _ = tiny_archive
    md5 = make_tarball(tmp_path / "src", "cifar-10-batches-py", archive, extra={member: b"owned"})
    monkeypatch.setitem(CIFAR, "cifar10", dataclasses.replace(CIFAR["cifar10"], archive_md5=md5))
    root = tmp_path / "data"
    assert prep.main(["--root", str(root), "--dataset", "cifar10"]) == 1
    assert f"member '{member}' that would be written outside" in capsys.readouterr().err
    assert not any(p.exists() for p in (tmp_path / "evil", root / "evil", root / "cifar-10-batches-py"))


def test_archive_with_a_link_is_refused(tmp_path):
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(ValueError, match="is a link or special file"):
        prep.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_downloader_bad_arguments_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        prep.main(["--root", str(tmp_path), "--dataset", "cifar11"])
    assert exit_.value.code == 2 and "invalid choice: 'cifar11'" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        prep.main(["--root", str(tmp_path / "file"), "--dataset", "cifar10"])
    assert exit_.value.code == 2 and "is a file, not a folder" in capsys.readouterr().err


SPLIT_ARGS = ["--dataset", "digits", "--imbalance", "10", "--noise-kind", "uniform", "--noise-rate", "0.4",
              "--meta-per-class", "10", "--seed", "0"]


def test_splits_cli_round_trip_and_check(tmp_path, capsys):
    out = tmp_path / "splits" / "x.json"
    assert split_cli.main(SPLIT_ARGS + ["--out", str(out)]) == 0
    direct = make_split(SplitSpec("digits", 10.0, "exp", "uniform", 0.4, 10, 0), load_source("digits").train_y)
    saved = load_split(out)
    assert saved.spec == direct.spec and saved.class_counts == direct.class_counts
    assert np.array_equal(saved.train_idx, direct.train_idx) and np.array_equal(saved.train_labels, direct.train_labels)
    capsys.readouterr()
    assert split_cli.main(["--check", str(out)]) == 0
    report = capsys.readouterr().out
    flipped = int(np.sum(direct.train_labels != direct.clean_labels))
    assert f"class counts {direct.class_counts}" in report and "meta images: 100 (10 per class)" in report
    assert f"realised noise: {flipped} of {len(direct.train_idx)}" in report and "matches its content" in report


def test_splits_check_refuses_a_tampered_file(tmp_path, capsys):
    out = tmp_path / "x.json"
    split_cli.main(SPLIT_ARGS + ["--out", str(out)])
    record = json.loads(out.read_text())
    record["split"]["train_labels"][0] = (record["split"]["train_labels"][0] + 1) % 10
    out.write_text(json.dumps(record))
    capsys.readouterr()
    assert split_cli.main(["--check", str(out)]) == 1
    assert "was modified" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--noise-kind", "uniform", "--noise-rate", "1.5"], "argument --noise-rate: noise_rate=1.5"),
    (["--imbalance", "0.5"], "argument --imbalance: imbalance=0.5"),
    (["--imbalance", "ten"], "argument --imbalance: invalid float value: 'ten'"),
    (["--meta-per-class", "500"], "argument --meta-per-class: meta_per_class=500"),
    (["--seed", "-1"], "argument --seed: seed=-1"),
    (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
])
def test_splits_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "x.json"
    with pytest.raises(SystemExit) as exit_:
        split_cli.main(args + ["--out", str(out)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_splits_need_out_or_check(tmp_path, capsys):
    for args, message in (([], "argument --out: missing"), (["--check", "a.json", "--out", "b.json"], "not both"),
                          (["--check", str(tmp_path / "none.json")], "does not exist")):
        with pytest.raises(SystemExit) as exit_:
            split_cli.main(args)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_cifar_split_reads_labels_through_the_verified_loader(tmp_path, monkeypatch, capsys):
    expected = write_tiny(tmp_path / "data", "cifar10", n=40)
    monkeypatch.setitem(CIFAR, "cifar10", expected["table"])
    out = tmp_path / "c.json"
    args = ["--dataset", "cifar10", "--root", str(tmp_path / "data"), "--imbalance", "2", "--meta-per-class", "1"]
    assert split_cli.main(args + ["--out", str(out)]) == 0
    split = load_split(out)
    assert np.array_equal(split.clean_labels, expected["train_y"][split.train_idx])
    shutil.rmtree(tmp_path / "data")
    assert split_cli.main(args + ["--out", str(tmp_path / "d.json")]) == 1
    assert "python -m data_prep.cifar --root" in capsys.readouterr().err and not (tmp_path / "d.json").exists()
