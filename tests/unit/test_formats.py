"""The four dataset formats: per-file validation, statistics, sample pages, raw-file paths."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from workbench.datasets.formats import (
    MAX_ISSUES,
    PREVIEW_CHARS,
    inspect_dataset,
    list_samples,
    resolve_sample,
)
from workbench.datasets.types import FileIssue, Inspection, NumericSummary, Sample, Statistics
from workbench.enums import DatasetFormat, Purpose
from workbench.errors import DatasetInvalid, InvalidInput, NotFound

DIR, JSON, SINGLE, BRAT = (
    DatasetFormat.DIR,
    DatasetFormat.JSON,
    DatasetFormat.SINGLE_TEXT,
    DatasetFormat.BRAT_ANN,
)
IMAGE, TEXT = Purpose.IMAGE, Purpose.TEXT


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def png(root: Path, rel: str, width: int = 4, height: int = 3, fmt: str = "PNG") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (200, 10, 10)).save(path, fmt)
    return path


def issues(items: list[FileIssue]) -> list[tuple[str, str]]:
    return [(issue.path, issue.message) for issue in items]


def paths(items: list[FileIssue]) -> list[str]:
    return [issue.path for issue in items]


def check_ok(inspection: Inspection, files: int) -> Statistics:
    report = inspection.report
    assert report.errors == [], report.errors
    assert report.ok is True
    assert report.files_checked == files
    assert inspection.statistics is not None
    return inspection.statistics


def check_failed(inspection: Inspection) -> list[tuple[str, str]]:
    assert inspection.report.ok is False
    assert inspection.statistics is None
    return issues(inspection.report.errors)


# --- dir: images -----------------------------------------------------------------------------


def test_dir_images_valid(tmp_path):
    png(tmp_path, "cat/a.png")
    png(tmp_path, "cat/b.JPG", fmt="JPEG")
    png(tmp_path, "dog/c.webp", 8, 8, fmt="WEBP")
    write(tmp_path, "dog/.thumbs", b"x")
    (tmp_path / ".git").mkdir()
    inspection = inspect_dataset(tmp_path, DIR, IMAGE)
    assert check_ok(inspection, files=3) == Statistics(
        samples=3,
        classes=["cat", "dog"],
        class_counts={"cat": 2, "dog": 1},
        image_sizes={"4x3": 2, "8x8": 1},
    )
    assert issues(inspection.report.warnings) == [
        (".git", "hidden folder; ignored"),
        ("dog/.thumbs", "hidden file; ignored"),
    ]
    assert inspection.report.format is DIR


def test_dir_images_invalid(tmp_path):
    png(tmp_path, "stray.png")
    png(tmp_path, "cat/a.png")
    png(tmp_path, "cat/sub/b.png")
    write(tmp_path, "cat/notes.txt", "not an image")
    write(tmp_path, "cat/noext", b"x")
    write(tmp_path, "dog/broken.png", b"\x89PNG\r\n\x1a\nnot really")
    png(tmp_path, "dog/d.png")
    (tmp_path / "empty").mkdir()
    inspection = inspect_dataset(tmp_path, DIR, IMAGE)
    errors = check_failed(inspection)
    assert errors[:4] == [
        ("stray.png", "file outside a class folder; move it into the folder of its class"),
        (
            "cat/noext",
            "unexpected extension '(none)' for image samples; "
            "use one of .png, .jpg, .jpeg, .bmp, .gif, .webp",
        ),
        (
            "cat/notes.txt",
            "unexpected extension '.txt' for image samples; "
            "use one of .png, .jpg, .jpeg, .bmp, .gif, .webp",
        ),
        ("cat/sub", "nested folder; put the samples directly inside the class folder"),
    ]
    assert errors[4][0] == "dog/broken.png"
    assert errors[4][1].startswith("is not a readable image (")
    assert errors[4][1].endswith("); re-export it as PNG or JPEG")
    assert len(errors) == 5
    assert issues(inspection.report.warnings) == [("empty", "empty class folder; ignored")]
    assert inspection.report.files_checked == 6


def test_dir_without_class_folders(tmp_path):
    write(tmp_path, ".hidden", b"x")
    inspection = inspect_dataset(tmp_path, DIR, IMAGE)
    assert check_failed(inspection) == [
        (".", "no class folders; put each class's samples in a folder named after the class")
    ]
    assert inspection.report.files_checked == 0


def test_dir_with_a_single_class_warns(tmp_path):
    png(tmp_path, "cat/a.png")
    inspection = inspect_dataset(tmp_path, DIR, IMAGE)
    assert check_ok(inspection, files=1).classes == ["cat"]
    assert issues(inspection.report.warnings) == [
        (".", "only one class ('cat'); a classifier needs at least two")
    ]


def test_dir_symlinks_are_errors(tmp_path):
    png(tmp_path, "cat/a.png")
    png(tmp_path, "dog/b.png")
    os.symlink(tmp_path / "cat/a.png", tmp_path / "dog/link.png")
    assert check_failed(inspect_dataset(tmp_path, DIR, IMAGE)) == [
        ("dog/link.png", "symbolic links are not allowed; replace it with the real file")
    ]


def test_dir_image_samples_are_paged_in_sorted_order(tmp_path):
    for rel in ["dog/z.png", "cat/b.png", "cat/a.png", "cat/.hidden.png", "cat/notes.md"]:
        png(tmp_path, rel) if rel.endswith(".png") else write(tmp_path, rel, "x")
    total, page = list_samples(tmp_path, DIR, IMAGE, 0, 2)
    assert total == 3
    assert page == [
        Sample(path="cat/a.png", label="cat", kind="image"),
        Sample(path="cat/b.png", label="cat", kind="image"),
    ]
    assert list_samples(tmp_path, DIR, IMAGE, 2, 2) == (
        3,
        [Sample(path="dog/z.png", label="dog", kind="image")],
    )
    assert list_samples(tmp_path, DIR, IMAGE, 5, 2) == (3, [])


def test_two_thousand_images_are_checked_quickly(tmp_path):
    for i in range(2000):
        png(tmp_path, f"class{i % 4}/{i:04}.png", 16, 16)
    started = time.perf_counter()
    inspection = inspect_dataset(tmp_path, DIR, IMAGE)
    assert time.perf_counter() - started < 10
    stats = check_ok(inspection, files=2000)
    assert stats.class_counts == {f"class{i}": 500 for i in range(4)}
    assert stats.image_sizes == {"16x16": 2000}


# --- dir: text -------------------------------------------------------------------------------


def test_dir_text_valid(tmp_path):
    write(tmp_path, "pos/a.txt", "good movie")
    write(tmp_path, "neg/b.txt", b"\xef\xbb\xbfbad")  # a BOM is not part of the text
    write(tmp_path, "neg/c.txt", "so-so " * 200)
    stats = check_ok(inspect_dataset(tmp_path, DIR, TEXT), files=3)
    assert stats == Statistics(
        samples=3,
        classes=["neg", "pos"],
        class_counts={"neg": 2, "pos": 1},
        text_lengths=NumericSummary(min=3, max=1200, mean=(3 + 1200 + 10) / 3),
    )
    total, page = list_samples(tmp_path, DIR, TEXT, 0, 10)
    assert total == 3
    assert [(s.path, s.label, s.kind) for s in page] == [
        ("neg/b.txt", "neg", "text"),
        ("neg/c.txt", "neg", "text"),
        ("pos/a.txt", "pos", "text"),
    ]
    assert page[0].text == "bad"
    assert page[1].text == ("so-so " * 200)[:PREVIEW_CHARS]


def test_dir_text_invalid(tmp_path):
    write(tmp_path, "pos/a.txt", "fine")
    write(tmp_path, "pos/latin1.txt", "caf\xe9".encode("latin-1"))
    write(tmp_path, "pos/blank.txt", " \n\t\n")
    png(tmp_path, "neg/picture.png")
    errors = check_failed(inspect_dataset(tmp_path, DIR, TEXT))
    assert errors == [
        ("neg/picture.png", "unexpected extension '.png' for text samples; use one of .txt"),
        ("pos/blank.txt", "is empty; every text sample needs some text"),
        ("pos/latin1.txt", "is not valid UTF-8 (bad byte at offset 3); save it as UTF-8"),
    ]


# --- json (COCO-style detection) -------------------------------------------------------------


def coco(root: Path, document: object) -> None:
    write(root, "annotations.json", json.dumps(document))


def valid_coco(root: Path) -> dict:
    png(root, "images/a.png", 10, 8)
    png(root, "images/sub/b.png", 6, 6)
    png(root, "images/unlisted.png")
    document = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 10, "height": 8},
            {"id": 2, "file_name": "sub/b.png", "width": 6, "height": 6},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 4]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [4.5, 3, 6.5, 5.5]},  # 1px over
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "segmentation": []},
        ],
        "categories": [
            {"id": 1, "name": "cat"},
            {"id": 2, "name": "dog"},
            {"id": 3, "name": "owl"},
        ],
    }
    coco(root, document)
    return document


def test_json_valid(tmp_path):
    valid_coco(tmp_path)
    write(tmp_path, "README.md", "about")
    inspection = inspect_dataset(tmp_path, JSON, IMAGE)
    assert check_ok(inspection, files=3) == Statistics(
        samples=2,
        classes=["cat", "dog", "owl"],
        class_counts={"cat": 2, "dog": 1, "owl": 0},
        image_sizes={"10x8": 1, "6x6": 1},
        annotations=3,
    )
    assert issues(inspection.report.warnings) == [
        ("README.md", "not part of the json format; ignored"),
        ("images/sub/b.png", "has no annotations"),
        ("images/unlisted.png", "not listed in annotations.json; ignored"),
    ]


def test_json_samples_carry_their_boxes(tmp_path):
    valid_coco(tmp_path)
    total, page = list_samples(tmp_path, JSON, IMAGE, 0, 1)
    assert total == 2
    assert page == [
        Sample(
            path="images/a.png",
            kind="image",
            boxes=[
                {"label": "cat", "bbox": [0, 0, 5, 4]},
                {"label": "dog", "bbox": [4.5, 3, 6.5, 5.5]},
                {"label": "cat", "bbox": [1, 1, 2, 2]},
            ],
        )
    ]
    assert list_samples(tmp_path, JSON, IMAGE, 1, 5) == (
        2,
        [Sample(path="images/sub/b.png", kind="image", boxes=[])],
    )


def test_json_entry_errors(tmp_path):
    png(tmp_path, "images/a.png", 10, 8)
    png(tmp_path, "images/b.png", 10, 8)
    write(tmp_path, "images/c.png", b"garbage")
    coco(
        tmp_path,
        {
            "images": [
                {"id": 1, "file_name": "a.png", "width": 10, "height": 8},
                {"id": 1, "file_name": "b.png", "width": 10, "height": 8},
                {"id": 2, "file_name": "b.png", "width": 12, "height": 8},
                {"id": 3, "file_name": "missing.png", "width": 10, "height": 8},
                {"id": 4, "file_name": "c.png", "width": 10, "height": 8},
                {"id": 5, "file_name": "../etc/passwd", "width": 10, "height": "8"},
                "not an object",
            ],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5]},
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
                {"id": 2, "image_id": 1, "category_id": 9, "bbox": [0, 0, 5, 5]},
                {"id": 3, "image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5]},
                {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 5]},
                {"id": 5, "image_id": 1, "category_id": 1, "bbox": [5, 5, 6.5, 2]},
                {"id": 6, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, True]},
                {"id": 7, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2]},
                {"id": 8, "image_id": 1, "category_id": 1},
            ],
            "categories": [{"id": 1, "name": "cat"}, {"id": 1, "name": "dup"}],
        },
    )
    errors = check_failed(inspect_dataset(tmp_path, JSON, IMAGE))
    a = "annotations.json"
    assert errors == [
        (a, "images[1]: duplicate id 1 (also images[0])"),
        (a, "images[5]: 'file_name' must be a relative path inside images/, got '../etc/passwd'"),
        (a, "images[5]: 'height' must be a positive integer, got '8'"),
        (a, "images[6]: must be an object, got 'not an object'"),
        (a, "categories[1]: duplicate id 1"),
        (a, "annotations[0]: 'bbox' must be 4 numbers [x, y, width, height], got [0, 0, 5]"),
        (a, "annotations[1]: duplicate id 1"),
        (a, "annotations[2]: unknown category_id 9; add it to 'categories'"),
        (a, "annotations[3]: unknown image_id 99; add the image to 'images'"),
        (a, "annotations[4]: bbox [0, 0, 0, 5] must have a positive width and height"),
        (
            a,
            "annotations[5]: bbox [5, 5, 6.5, 2] lies outside the 10x8 image 'a.png'; "
            "boxes are [x, y, width, height] in pixels",
        ),
        (
            a,
            "annotations[6]: 'bbox' must be 4 numbers [x, y, width, height], got [0, 0, 1, True]",
        ),
        (a, "annotations[8]: missing key 'bbox'"),
        (
            "images/b.png",
            "annotations.json declares 12x8 but the image is 10x8; "
            "fix width and height of image id 2",
        ),
        (
            "images/c.png",
            "is not a readable image (UnidentifiedImageError: cannot identify image file "
            "'c.png'); re-export it as PNG or JPEG",
        ),
        ("images/missing.png", "listed in annotations.json (image id 3) but missing"),
    ]


def test_json_invalid_document(tmp_path):
    (tmp_path / "images").mkdir()
    write(tmp_path, "annotations.json", '{"images": [],\n "annotations": [,]}')
    assert check_failed(inspect_dataset(tmp_path, JSON, IMAGE)) == [
        ("annotations.json", "invalid JSON at line 2, column 18: Expecting value")
    ]
    coco(tmp_path, {"images": [], "annotations": {}})
    assert check_failed(inspect_dataset(tmp_path, JSON, IMAGE)) == [
        ("annotations.json", "missing key 'annotations' (a list)"),
        ("annotations.json", "missing key 'categories' (a list)"),
    ]
    coco(tmp_path, [1, 2])
    assert check_failed(inspect_dataset(tmp_path, JSON, IMAGE)) == [
        ("annotations.json", "must be a JSON object with images, annotations, categories")
    ]
    with pytest.raises(DatasetInvalid):
        list_samples(tmp_path, JSON, IMAGE, 0, 10)


def test_json_missing_parts(tmp_path):
    write(tmp_path, "labels.json", "{}")
    assert check_failed(inspect_dataset(tmp_path, JSON, IMAGE)) == [
        ("images", "missing folder; put the images in images/ beside annotations.json"),
        ("annotations.json", "missing; add the COCO-style annotations.json at the root"),
    ]


def test_json_needs_the_image_purpose(tmp_path):
    valid_coco(tmp_path)
    with pytest.raises(InvalidInput) as caught:
        inspect_dataset(tmp_path, JSON, TEXT)
    assert caught.value.details == {"format": "json", "purpose": "text"}


# --- single_text -----------------------------------------------------------------------------


def test_single_text_valid(tmp_path):
    long_text = "word " * 150
    write(
        tmp_path,
        "data.tsv",
        f"\ufeffpos\tgreat film\r\n\r\nneg\tawful\tboring\n  \nneg\t{long_text}\n",
    )
    write(tmp_path, "README.md", "how this was made")
    inspection = inspect_dataset(tmp_path, SINGLE, TEXT)
    assert check_ok(inspection, files=1) == Statistics(
        samples=3,
        classes=["neg", "pos"],
        class_counts={"neg": 2, "pos": 1},
        text_lengths=NumericSummary(min=10, max=750, mean=(10 + 12 + 750) / 3),
    )
    assert issues(inspection.report.warnings) == [
        ("README.md", "not a .txt, .tsv or .csv file at the root; ignored")
    ]
    total, page = list_samples(tmp_path, SINGLE, TEXT, 1, 5)
    assert total == 3
    assert page == [
        Sample(path="data.tsv:3", label="neg", kind="text", text="awful\tboring"),
        Sample(path="data.tsv:5", label="neg", kind="text", text=long_text[:PREVIEW_CHARS]),
    ]


def test_single_text_bad_lines(tmp_path):
    write(tmp_path, "data.txt", "pos\tok\nno tab here\n\tno label\nneg\t   \nneg\tfine\n")
    assert check_failed(inspect_dataset(tmp_path, SINGLE, TEXT)) == [
        ("data.txt:2", "no tab between label and text; write '<label>\\t<text>'"),
        ("data.txt:3", "empty label before the tab"),
        ("data.txt:4", "empty text after the tab"),
    ]
    total, page = list_samples(tmp_path, SINGLE, TEXT, 0, 10)
    assert (total, [s.path for s in page]) == (2, ["data.txt:1", "data.txt:5"])


def test_single_text_error_list_is_capped(tmp_path):
    write(tmp_path, "data.txt", "no tab\n" * 250)
    report = inspect_dataset(tmp_path, SINGLE, TEXT).report
    assert len(report.errors) == MAX_ISSUES == 200
    assert report.errors_truncated == 50
    assert report.errors[-1].path == "data.txt:200"


def test_single_text_file_problems(tmp_path):
    write(tmp_path, "notes.md", "x")
    assert check_failed(inspect_dataset(tmp_path, SINGLE, TEXT)) == [
        (
            ".",
            "no .txt, .tsv or .csv file at the root; put all samples in one UTF-8 file, "
            "one '<label>\\t<text>' line each",
        )
    ]
    write(tmp_path, "a.txt", "pos\tx\n")
    write(tmp_path, "b.csv", "pos\tx\n")
    message = (
        "one of 2 data files (a.txt, b.csv); the single_text format takes exactly one, merge them"
    )
    assert check_failed(inspect_dataset(tmp_path, SINGLE, TEXT)) == [
        ("a.txt", message),
        ("b.csv", message),
    ]
    (tmp_path / "b.csv").unlink()
    write(tmp_path, "a.txt", b"pos\tna\xefve\n")
    assert check_failed(inspect_dataset(tmp_path, SINGLE, TEXT)) == [
        ("a.txt", "is not valid UTF-8 (bad byte at offset 6); save it as UTF-8")
    ]
    write(tmp_path, "a.txt", "\n \n")
    assert check_failed(inspect_dataset(tmp_path, SINGLE, TEXT)) == [
        ("a.txt", "has no samples; write one '<label>\\t<text>' line per sample")
    ]


# --- brat_ann --------------------------------------------------------------------------------

DOC_A = "Alice met Bob in Paris."
ANN_A = (
    "T1\tPerson 0 5\tAlice\n"
    "T2\tPerson 10 13\tBob\n"
    "T3\tPlace 17 22\tParis\n"
    "R1\tMeets Arg1:T1 Arg2:T2\n"
    "#1\tAnnotatorNotes T1\tfirst name\n"
    "A1\tNegated T2\n"
)
DOC_B = "New\nYork is big."
ANN_B = "T1\tPlace 0 3;4 8\tNew York\r\n"


def valid_brat(root: Path) -> None:
    write(root, "news/a.txt", DOC_A)
    write(root, "news/a.ann", ANN_A)
    write(root, "b.txt", DOC_B)
    write(root, "b.ann", ANN_B)
    write(root, "annotation.conf", "[entities]\nPerson\nPlace\n")


def test_brat_valid(tmp_path):
    valid_brat(tmp_path)
    write(tmp_path, "news/readme.md", "x")
    inspection = inspect_dataset(tmp_path, BRAT, TEXT)
    assert check_ok(inspection, files=4) == Statistics(
        samples=2,
        classes=["Person", "Place"],
        class_counts={"Person": 2, "Place": 2},
        text_lengths=NumericSummary(min=len(DOC_B), max=len(DOC_A), mean=(16 + 23) / 2),
        annotations=4,
    )
    assert issues(inspection.report.warnings) == [
        ("news/readme.md", "not a .txt or .ann file; ignored")
    ]


def test_brat_samples_carry_their_entities(tmp_path):
    valid_brat(tmp_path)
    total, page = list_samples(tmp_path, BRAT, TEXT, 0, 1)
    assert total == 2
    assert page == [
        Sample(
            path="b.txt",
            kind="text",
            text=DOC_B,
            entities=[{"label": "Place", "start": 0, "end": 8, "text": "New York"}],
        )
    ]
    _, page = list_samples(tmp_path, BRAT, TEXT, 1, 1)
    assert page[0].path == "news/a.txt"
    assert page[0].entities == [
        {"label": "Person", "start": 0, "end": 5, "text": "Alice"},
        {"label": "Person", "start": 10, "end": 13, "text": "Bob"},
        {"label": "Place", "start": 17, "end": 22, "text": "Paris"},
    ]


def test_brat_errors(tmp_path):
    write(tmp_path, "a.txt", DOC_A)
    write(
        tmp_path,
        "a.ann",
        "T1\tPerson 0 5\tAlice\n"
        "T1\tPerson 10 13\tBob\n"
        "T2 Person 0 5 Alice\n"
        "T3\tPerson 17 40\tParis.\n"
        "T4\tPerson 0 5\tAlicia\n"
        "T5\tPerson 5 5\t\n"
        "X1\tsomething\n"
        "R1 Meets\n",
    )
    write(tmp_path, "lonely.txt", "no annotations file")
    write(tmp_path, "sub/orphan.ann", "T1\tPerson 0 1\tx\n")
    write(tmp_path, "bad.txt", b"\xff")
    write(tmp_path, "bad.ann", "")
    inspection = inspect_dataset(tmp_path, BRAT, TEXT)
    assert check_failed(inspection) == [
        ("lonely.txt", "has no matching .ann file; add lonely.ann (may be empty)"),
        ("sub/orphan.ann", "has no matching .txt file; add sub/orphan.txt or remove it"),
        ("a.ann:2", "duplicate id T1"),
        ("a.ann:3", "malformed entity line; expected 'T<n>\\t<Type> <start> <end>\\t<text>'"),
        ("a.ann:4", "T3: offsets 17 40 lie outside the document (23 characters)"),
        ("a.ann:5", "T4: span text 'Alicia' differs from the document text 'Alice' at 0 5"),
        ("a.ann:6", "T5: empty or reversed span 5 5"),
        ("a.ann:7", "unknown annotation line; brat lines start with T, R, E, A, M, N, * or #"),
        ("a.ann:8", "malformed line; brat fields are tab-separated"),
        ("bad.txt", "is not valid UTF-8 (bad byte at offset 0); save it as UTF-8"),
    ]
    assert inspection.report.files_checked == 6


def test_brat_reversed_span(tmp_path):
    write(tmp_path, "a.txt", DOC_A)
    write(tmp_path, "a.ann", "T1\tPerson 5 1\tx\n")
    assert check_failed(inspect_dataset(tmp_path, BRAT, TEXT)) == [
        ("a.ann:1", "T1: empty or reversed span 5 1")
    ]


def test_brat_without_documents(tmp_path):
    write(tmp_path, "annotation.conf", "[entities]\n")
    assert check_failed(inspect_dataset(tmp_path, BRAT, TEXT)) == [
        (".", "no documents; add pairs of <doc>.txt and <doc>.ann files")
    ]


# --- arguments and raw files -----------------------------------------------------------------


def test_formats_and_purposes_must_match(tmp_path):
    for fmt, purpose in [(SINGLE, IMAGE), (BRAT, IMAGE), (JSON, TEXT)]:
        with pytest.raises(InvalidInput):
            inspect_dataset(tmp_path, fmt, purpose)
        with pytest.raises(InvalidInput):
            list_samples(tmp_path, fmt, purpose, 0, 10)
    with pytest.raises(InvalidInput):
        list_samples(tmp_path, DIR, IMAGE, -1, 10)
    with pytest.raises(NotFound):
        inspect_dataset(tmp_path / "gone", DIR, IMAGE)


def test_resolve_sample(tmp_path):
    root = tmp_path / "root"
    png(root, "cat/a.png")
    write(root, "data.txt", "pos\tx\n")
    write(tmp_path, "secret.txt", "outside")
    os.symlink(tmp_path / "secret.txt", root / "cat/escape.png")
    assert resolve_sample(root, "cat/a.png") == (root / "cat/a.png").resolve()
    assert resolve_sample(root, "data.txt:1") == (root / "data.txt").resolve()
    for bad in ["../secret.txt", "cat/../../secret.txt", "/etc/passwd", "C:/x", "a\\b", ""]:
        with pytest.raises(InvalidInput) as caught:
            resolve_sample(root, bad)
        assert caught.value.details == {"path": bad}
    for missing in ["cat/escape.png", "cat/nope.png", "cat", "data.txt:x"]:
        with pytest.raises(NotFound) as caught:
            resolve_sample(root, missing)
        assert caught.value.details == {"kind": "sample", "path": missing}
