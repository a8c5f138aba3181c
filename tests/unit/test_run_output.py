"""RunOutput: what a run leaves in its folder is read and copied as hostile input. Each case
is a shape a container can make in a folder it may write (links out, pipes, hard links,
swapped names, deep or huge trees) and asserts that nothing outside the folder is read or
copied and that a failed copy leaves nothing behind. The attacks through a real server and
engine are in tests/security/test_container_output.py."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from workbench.errors import UnsafeOutput
from workbench.jobs.files import MAX_OUTPUT_DEPTH, RunOutput


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A folder of the host the run must never reach."""
    folder = tmp_path / "host"
    folder.mkdir()
    (folder / "secret.txt").write_text("the server's secret")
    return folder


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "job"
    (folder / "out").mkdir(parents=True)
    return folder


def test_plain_files_and_folders_are_read_and_copied(out: Path, tmp_path: Path) -> None:
    (out / "out" / "result.json").write_text('{"ok": true}')
    tree = out / "out" / "files"
    (tree / "sub").mkdir(parents=True)
    (tree / "model.pt").write_bytes(b"x" * 3_000_000)
    (tree / "sub" / "vocab.txt").write_text("a\nb\n")
    os.chmod(tree / "model.pt", 0o600)
    output = RunOutput(out)
    assert output.read_json("out/result.json", limit=100) == {"ok": True}
    assert output.read_json("out/missing.json", limit=100) is None
    assert output.exists("out/files") and not output.exists("out/nothing")
    dest = tmp_path / "copy"
    assert output.copy("out/files", dest) == 3_000_000 + 4
    assert (dest / "model.pt").read_bytes() == b"x" * 3_000_000
    assert (dest / "sub" / "vocab.txt").read_text() == "a\nb\n"
    assert (dest / "model.pt").stat().st_mode & 0o777 == 0o644  # the server's, readable


@pytest.mark.parametrize("where", ["out/files", "out/files/sub", "out/files/sub/model.pt"])
def test_a_link_anywhere_fails_and_nothing_is_copied(
    out: Path, secret: Path, tmp_path: Path, where: str
) -> None:
    """The import's escape: out/files (or a folder or file in it) is a link to a host folder;
    following it would move the host's files into the attacker's version."""
    (out / "out" / "files").mkdir()
    if where != "out/files":
        (out / "out" / "files" / "sub").mkdir(exist_ok=True)
    target = out / where
    if target.exists():
        target.rmdir()
    target.symlink_to(secret if not where.endswith(".pt") else secret / "secret.txt")
    dest = tmp_path / "copy"
    with pytest.raises(UnsafeOutput, match="symbolic link"):
        RunOutput(out).copy("out/files", dest)
    assert not dest.exists()
    assert (secret / "secret.txt").read_text() == "the server's secret"


def test_a_result_that_is_a_link_to_a_host_file_is_not_read(out: Path, secret: Path) -> None:
    (out / "out" / "result.json").symlink_to(secret / "secret.txt")
    with pytest.raises(UnsafeOutput, match=r"symbolic link at out/result\.json"):
        RunOutput(out).read_json("out/result.json", limit=1000)
    (out / "out").rename(out / "real")
    (out / "out").symlink_to(secret)  # the folder on the way is the link
    with pytest.raises(UnsafeOutput, match="symbolic link at out"):
        RunOutput(out).read_bytes("out/secret.txt", limit=1000)


def test_a_named_pipe_is_refused_without_blocking(out: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: the server would hang."""
    os.mkfifo(out / "out" / "result.json")
    done = threading.Event()

    def read() -> None:
        with pytest.raises(UnsafeOutput, match="named pipe"):
            RunOutput(out).read_json("out/result.json", limit=1000)
        done.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    assert done.is_set()


def test_a_hard_link_is_refused(out: Path, tmp_path: Path) -> None:
    """A second name for a file could be another file of the same filesystem."""
    other = out / "elsewhere.bin"
    other.write_bytes(b"not the run's")
    (out / "out" / "files").mkdir()
    os.link(other, out / "out" / "files" / "model.pt")
    with pytest.raises(UnsafeOutput, match="hard link"):
        RunOutput(out).copy("out/files", tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_paths_out_of_the_folder_and_oversized_files(out: Path) -> None:
    with pytest.raises(UnsafeOutput, match="leads out"):
        RunOutput(out).read_bytes("out/../../host/secret.txt", limit=10)
    (out / "out" / "points.jsonl").write_bytes(b"x" * 101)
    with pytest.raises(UnsafeOutput, match="larger than the 100 bytes"):
        RunOutput(out).read_bytes("out/points.jsonl", limit=100)
    with pytest.raises(UnsafeOutput, match="a folder at out"):
        RunOutput(out).read_bytes("out", limit=100)


def test_too_deep_a_tree_is_refused(out: Path, tmp_path: Path) -> None:
    deep = out / "out" / "files"
    for i in range(MAX_OUTPUT_DEPTH + 1):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    with pytest.raises(UnsafeOutput, match="deeper than"):
        RunOutput(out).copy("out/files", tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_a_missing_output_folder_reads_as_nothing(tmp_path: Path) -> None:
    output = RunOutput(tmp_path / "none")
    assert output.read_bytes("out/result.json", limit=10) is None
    assert output.open("metrics.jsonl") is None
    with pytest.raises(UnsafeOutput, match="left no out/files"):
        output.copy("out/files", tmp_path / "copy")


def test_a_sparse_file_or_one_over_the_budget_is_not_copied(out: Path, tmp_path: Path) -> None:
    """A few blocks on disk that read as 1 GiB of zeros (or a TiB) would fill the server's disk."""
    files = out / "out" / "files"
    files.mkdir()
    with (files / "weights.bin").open("wb") as f:
        f.truncate(1 << 30)
    with pytest.raises(UnsafeOutput, match=r"sparse file at out/files/weights\.bin"):
        RunOutput(out).copy("out/files", tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
    (files / "weights.bin").write_bytes(b"x" * 2000)
    (files / "more.bin").write_bytes(b"y" * 2000)
    with pytest.raises(UnsafeOutput, match="more than 3000 bytes"):
        RunOutput(out).copy("out/files", tmp_path / "copy", max_bytes=3000)
    assert not (tmp_path / "copy").exists()
    assert RunOutput(out).copy("out/files", tmp_path / "copy", max_bytes=4000) == 4000
