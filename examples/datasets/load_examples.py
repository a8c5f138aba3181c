"""Make the example datasets and register them, online and public, in the local registry.

Used by ``scripts/start`` so a fresh Workbench opens with real data in it::

    python examples/datasets/load_examples.py --owner "$USER"

It works on the registry of ``$WORKBENCH_HOME`` through Workbench's services (the same
code the REST API runs) and is idempotent: a dataset the owner already has is left alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_datasets import DatasetArchives, make_digits, make_shapes, make_texts

from workbench.config import Settings, default_owner
from workbench.datasets.schemas import DatasetCreate, DatasetFilter
from workbench.enums import Split, SplitMode, Visibility
from workbench.services import Workbench
from workbench.users import Actor

DESCRIPTIONS = {
    "digits": "Handwritten digits 0-9 (scikit-learn's copy of the UCI set), 32x32 PNG.",
    "texts": "Docstrings of Python standard-library packages, labelled by package.",
    "shapes": "Synthetic 64x64 images with one to three circles, squares and triangles, boxed.",
}


def register(wb: Workbench, owner: Actor, made: DatasetArchives) -> str:
    existing = wb.datasets.list(owner, DatasetFilter(mine=True, q=made.name))
    if any(d.name == made.name for d in existing):
        return f"{made.name}: already registered"
    ds = wb.datasets.create(
        owner,
        DatasetCreate(
            name=made.name,
            description=DESCRIPTIONS.get(made.name, ""),
            purpose=made.purpose,
            sub_purpose=made.sub_purpose,
            format=made.format,
            split_mode=SplitMode.INDEPENDENT if made.test else SplitMode.RATIO,
            visibility=Visibility.PUBLIC,
        ),
    )
    limit = wb.settings.archive_limits.max_archive_bytes
    for split, path in ((Split.TRAIN, made.train), (Split.TEST, made.test)):
        if path is None:
            continue
        with path.open("rb") as f:
            archive = wb.store.save_stream(f, limit)
        try:
            wb.datasets.upload(owner, ds.id, split, archive, path.name)
        finally:
            archive.path.unlink(missing_ok=True)
    wb.datasets.publish(owner, ds.id)
    return f"{made.name}: registered as dataset {ds.id} ({made.samples} samples, online)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owner", default=default_owner(), help="user who owns them")
    args = parser.parse_args(argv)
    wb = Workbench.from_settings(Settings.from_env())
    try:
        wb.registry.check_schema()
        owner = wb.users.ensure_owner(args.owner)
        with tempfile.TemporaryDirectory() as tmp:
            for make in (make_digits, make_texts, make_shapes):
                print(register(wb, owner, make(Path(tmp))))
    finally:
        wb.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
