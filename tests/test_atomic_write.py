"""Atomic writes: the rename leaves no temporary file, and the file gets the mode open() would give."""
import os

import pytest

from metakit.io import atomic_write_text


def test_a_new_file_gets_the_mode_of_open_under_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.csv", "x")
        (tmp_path / "b.csv").write_text("x")                      # the reference: a plain open()
    finally:
        os.umask(old)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == (tmp_path / "b.csv").stat().st_mode & 0o777 == 0o644


def test_rewriting_keeps_the_files_mode_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "t.md"
    atomic_write_text(path, "one")
    path.chmod(0o640)
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.md"]


def test_a_failed_rename_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(tmp_path / "x.txt", "data")
    assert list(tmp_path.iterdir()) == []
