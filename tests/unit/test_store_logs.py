"""Reading a log in pages while its writer may still be writing (environment builds and
training runs share this)."""

from __future__ import annotations

from workbench.store import LOG_PAGE, ArtifactStore


def test_a_live_log_gives_whole_lines_only(tmp_path):
    store = ArtifactStore(tmp_path)
    path = store.path("runs/1/log.txt")
    path.parent.mkdir(parents=True)
    path.write_bytes("epoch 1\népoque 2 en co".encode())

    live = store.read_log("runs/1/log.txt", 0, live=True)
    assert live == b"epoch 1\n"  # the line being written waits for its newline
    assert store.read_log("runs/1/log.txt", len(live), live=True) == b""
    rest = store.read_log("runs/1/log.txt", len(live), live=False)
    assert rest.decode() == "époque 2 en co"  # a finished log gives everything


def test_a_full_page_ends_on_a_line_and_a_missing_log_is_empty(tmp_path):
    store = ArtifactStore(tmp_path)
    path = store.path("big.log")
    line = b"x" * 99 + b"\n"
    path.write_bytes(line * (LOG_PAGE // len(line) + 5))

    first = store.read_log("big.log", 0, live=False)
    assert len(first) <= LOG_PAGE and first.endswith(b"\n")
    assert len(first) % len(line) == 0
    second = store.read_log("big.log", len(first), live=False)
    assert first + second == path.read_bytes()
    assert store.read_log("nothing.log", 0, live=True) == b""
