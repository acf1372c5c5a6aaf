"""Download, verify and extract CIFAR-10/100 into torchvision's layout.

    python -m data_prep.cifar --root data --dataset cifar10      # or cifar100, or all

Steps, each printed: skip everything when every file is already there with the right MD5;
otherwise download the official tarball to a temporary file, check its MD5 and rename it into
place (a cached tarball that still matches is reused); check that no member of the archive
would land outside the target folder or is a link; extract into a temporary folder; check every
file's MD5; move the files into ``<root>/<folder>``. The checksums are the table in
`metakit.data.cifar` (the ones torchvision publishes).
"""
from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable

from data_prep import Parser
from metakit.data.cifar import CIFAR, check_name, md5_file
from metakit.data.sources import default_root
from metakit.io import check_writable_folder

Log = Callable[[str], None]


def fetch(url: str, dest: Path, expected_md5: str, log: Log = print) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, keeping it only if its MD5 matches.

    Example:
        >>> import tempfile, pathlib
        >>> src = pathlib.Path(tempfile.mkdtemp()) / "src.bin"; _ = src.write_bytes(b"")
        >>> fetch(src.as_uri(), src.with_name("copy.bin"), "d41d8cd98f00b204e9800998ecf8427e", log=lambda m: None).name
        'copy.bin'
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest, size = hashlib.md5(usedforsecurity=False), 0
        log(f"downloading {url} -> {dest}")
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while block := response.read(1 << 20):
                out.write(block)
                digest.update(block)
                size += len(block)
        if digest.hexdigest() != expected_md5:
            raise ValueError(f"the download of {url} has MD5 {digest.hexdigest()}, expected {expected_md5}: it "
                             f"is corrupt or not the official file, so it was not kept. Run the command again.")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log(f"downloaded {size / 1e6:.1f} MB, MD5 {expected_md5} matches")
    return dest


def safe_extract(archive: Path, target: Path) -> list[str]:
    """Extract a tarball into ``target`` after checking every member stays inside it.

    Refuses the whole archive (extracting nothing) when a member is absolute, climbs out with
    ``..``, or is a link or device file.

    Returns:
        The member names extracted.

    Example:
        >>> import io, tarfile, tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp()); info = tarfile.TarInfo("../evil")
        >>> with tarfile.open(tmp / "a.tar.gz", "w:gz") as tar: tar.addfile(info, io.BytesIO(b""))
        >>> safe_extract(tmp / "a.tar.gz", tmp / "out")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: archive '...a.tar.gz' has a member '../evil' that would be written outside '...out'; refusing the whole archive (extracted nothing). Delete it and download it again.
    """
    target = target.resolve()
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            dest = (target / member.name).resolve()
            if dest != target and target not in dest.parents:
                raise ValueError(f"archive '{archive}' has a member '{member.name}' that would be written outside "
                                 f"'{target}'; refusing the whole archive (extracted nothing). Delete it and "
                                 f"download it again.")
            if not (member.isfile() or member.isdir()):
                raise ValueError(f"archive '{archive}' has a member '{member.name}' that is a link or special "
                                 f"file; refusing the whole archive (extracted nothing). Delete it and download "
                                 f"it again.")
        target.mkdir(parents=True, exist_ok=True)
        extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(target, members=members, **extra)
    return [m.name for m in members]


def bad_files(name: str, root: Path) -> list[str]:
    """The files of ``name`` under ``root`` that are missing or fail their MD5.

    Example:
        >>> len(bad_files("cifar10", Path("/no/such/root")))
        7
    """
    table = check_name(name)
    return [f for f, md5 in table.files
            if not (root / table.folder / f).is_file() or md5_file(root / table.folder / f) != md5]


def prepare(name: str, root: str | Path, log: Log = print) -> bool:
    """Make ``<root>/<folder>`` hold every verified file of ``name``; returns whether it had to.

    Example:
        >>> prepare("mnist", "data")
        Traceback (most recent call last):
        ...
        ValueError: dataset='mnist' is not a CIFAR dataset; use one of ('cifar10', 'cifar100').
    """
    table, root = check_name(name), Path(root)
    bad = bad_files(name, root)
    if not bad:
        log(f"{name}: all {len(table.files)} files in {root / table.folder} match their MD5; nothing to download.")
        return False
    log(f"{name}: {len(bad)} of {len(table.files)} files missing or failing their MD5 ({', '.join(bad)}).")
    archive = root / table.archive
    if archive.is_file() and md5_file(archive) == table.archive_md5:
        log(f"using {archive}, already downloaded (MD5 matches)")
    else:
        fetch(table.url, archive, table.archive_md5, log)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{table.folder}.") as tmp:
        safe_extract(archive, Path(tmp))
        staged = Path(tmp) / table.folder
        for filename, md5 in table.files:
            if not (staged / filename).is_file() or md5_file(staged / filename) != md5:
                raise ValueError(f"'{archive}' matches its MD5 but its {table.folder}/{filename} is missing or "
                                 f"fails its checksum; the checksum table and the archive disagree.")
        final = root / table.folder
        final.mkdir(parents=True, exist_ok=True)
        for path in sorted(staged.iterdir()):
            if path.is_file():
                os.replace(path, final / path.name)
    log(f"{name}: extracted {len(table.files)} verified files into {final}")
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m data_prep.cifar``: returns the exit code (2: bad arguments, 1: failure)."""
    parser = Parser(prog="python -m data_prep.cifar",
                    description="Download and verify CIFAR-10/100 into torchvision's layout.")
    parser.add_argument("--root", default=None,
                        help="folder to hold the datasets (default: $METAKIT_DATA or ./data)")
    parser.add_argument("--dataset", required=True, choices=(*CIFAR, "all"), help="which dataset, or all")
    args = parser.parse_args(argv)
    root = default_root() if args.root is None else Path(args.root)
    if root.exists() and not root.is_dir():
        parser.error(f"argument --root: '{root}' is a file, not a folder; pass a folder, e.g. --root data.")
    try:
        check_writable_folder(root, "--root", "data")
    except ValueError as err:
        parser.error(f"argument {err}")
    names = tuple(CIFAR) if args.dataset == "all" else (args.dataset,)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name in names:
            prepare(name, root)
    except (OSError, ValueError, tarfile.TarError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
