"""A run's metrics file is the run's to write, endless or sparse: each look reads a bounded
piece of it, and a run keeps at most MAX_METRIC_LINES lines (before, one look read the
whole file into memory as rows: 8 MB of tiny lines made a million rows and 280 MiB)."""

from __future__ import annotations

from pathlib import Path

from workbench.training.jobs import _METRICS_PER_LOOK, MAX_METRIC_LINES, _Metrics, _new_lines


def test_looks_are_bounded_and_lines_capped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"a":1}\n' * (MAX_METRIC_LINES + 50_000))
    cursor = _Metrics()
    taken = 0
    with path.open("rb") as f:
        for _ in range(10):
            rows = _new_lines(f, cursor, final=True)
            taken += len(rows)
    assert taken == cursor.lines == MAX_METRIC_LINES
    with path.open("rb") as f:  # nothing more, however often it is looked at
        assert _new_lines(f, cursor, final=True) == {}


def test_a_sparse_metrics_file_is_read_a_piece_a_look(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with path.open("wb") as f:
        f.truncate(1 << 40)  # a TiB of zeros, a few blocks on disk
    cursor = _Metrics()
    with path.open("rb") as f:
        assert _new_lines(f, cursor, final=False) == {}
    assert cursor.offset <= _METRICS_PER_LOOK
