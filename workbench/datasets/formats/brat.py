"""``brat_ann``: brat standoff for NER, ``<doc>.txt`` with its entities in ``<doc>.ann``."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from workbench.datasets.formats.base import PREVIEW_CHARS, ROOT, BadFile, DatasetFormatRules, Issues
from workbench.datasets.formats.files import (
    lines,
    page,
    read_text,
    sorted_counts,
    summary,
    visible_files,
    walk,
)
from workbench.datasets.formats.splitting import Splitter
from workbench.datasets.types import Sample, Statistics
from workbench.enums import DatasetFormat, Purpose

_T_LINE = re.compile(r"^(T\d+)\t(\S+) (\d+ \d+(?:;\d+ \d+)*)\t(.*)$")
_OTHER_LINES = "REAMN#*"
#: what a document's two files end in
PAIR = (".txt", ".ann")
#: brat's annotation.conf and visual.conf: accepted anywhere, copied to both parts
CONF = ".conf"
#: the entities of one document: ``{"id", "label", "start", "end", "text"}`` each
Entities = list[dict[str, object]]


class BratFormat(DatasetFormatRules):
    """Documents (sub-folders allowed) and their ``T`` entity lines; the classes are the
    entity types."""

    format = DatasetFormat.BRAT_ANN

    def validate(self, root: Path, purpose: Purpose, issues: Issues) -> Statistics:
        stems = _documents(root, issues)
        if not stems and not issues.errors:
            issues.error(ROOT, "no documents; add pairs of <doc>.txt and <doc>.ann files")
        counts: Counter[str] = Counter()
        lengths: list[int] = []
        for stem in stems:
            issues.files_checked += 2
            pair = _read_pair(root, stem, issues)
            if pair is None:
                continue
            document, entities = pair
            lengths.append(len(document))
            counts.update(str(entity["label"]) for entity in entities)
        return Statistics(
            samples=len(stems),
            classes=sorted(counts),
            class_counts=sorted_counts(counts),
            text_lengths=summary(lengths),
            annotations=sum(counts.values()),
        )

    def list_samples(
        self, root: Path, purpose: Purpose, offset: int, limit: int
    ) -> tuple[int, list[Sample]]:
        stems = _documents(root, Issues())
        samples: list[Sample] = []
        for stem in page(stems, offset, limit):
            pair = _read_pair(root, stem, None)
            document, entities = pair if pair is not None else ("", [])
            samples.append(
                Sample(
                    path=f"{stem}.txt",
                    kind="text",
                    text=document[:PREVIEW_CHARS],
                    entities=[{k: v for k, v in e.items() if k != "id"} for e in entities],
                )
            )
        return len(stems), samples

    def split(self, source: Path, train: Path, test: Path, splitter: Splitter) -> None:
        """By document, its two files together; the ``.conf`` files go to both parts."""
        train_part, test_part = splitter.cut(_documents(source, Issues()))
        confs = [rel for rel in visible_files(source) if rel.endswith(CONF)]
        for folder, stems in ((train, train_part), (test, test_part)):
            for stem in stems:
                for suffix in PAIR:
                    splitter.link(source / f"{stem}{suffix}", folder / f"{stem}{suffix}")
            for rel in confs:
                splitter.link(source / rel, folder / rel)

    def describe(self, root: Path) -> tuple[list[str], int]:
        stems = _documents(root, Issues())
        types: set[str] = set()
        for stem in stems:
            pair = _read_pair(root, stem, None)
            types |= {str(entity["label"]) for entity in pair[1]} if pair else set()
        return sorted(types), len(stems)


def _documents(root: Path, issues: Issues) -> list[str]:
    """Stems ('/'-paths without suffix) of the complete .txt/.ann pairs, sorted."""
    texts: set[str] = set()
    anns: set[str] = set()
    for rel in walk(root, "", issues):
        stem, suffix = os.path.splitext(rel)
        if suffix == ".txt":
            texts.add(stem)
        elif suffix == ".ann":
            anns.add(stem)
        elif suffix != CONF:
            issues.warning(rel, "not a .txt or .ann file; ignored")
    for stem in sorted(texts - anns):
        issues.files_checked += 1
        issues.error(f"{stem}.txt", f"has no matching .ann file; add {stem}.ann (may be empty)")
    for stem in sorted(anns - texts):
        issues.files_checked += 1
        issues.error(f"{stem}.ann", f"has no matching .txt file; add {stem}.txt or remove it")
    return sorted(texts & anns)


def _parse_entity(line: str, document: str) -> dict[str, object]:
    """A brat ``T`` line as ``{"id", "label", "start", "end", "text"}``."""
    match = _T_LINE.match(line)
    if match is None:
        raise BadFile("malformed entity line; expected 'T<n>\\t<Type> <start> <end>\\t<text>'")
    entity_id, label, spans, text = match.groups()
    fragments = [tuple(map(int, span.split())) for span in spans.split(";")]
    for start, end in fragments:
        if start >= end:
            raise BadFile(f"{entity_id}: empty or reversed span {start} {end}")
        if end > len(document):
            raise BadFile(
                f"{entity_id}: offsets {start} {end} lie outside the document "
                f"({len(document)} characters)"
            )
    actual = " ".join(document[start:end] for start, end in fragments)
    if actual != text:
        raise BadFile(
            f"{entity_id}: span text {text!r} differs from the document text {actual!r} at {spans}"
        )
    return {
        "id": entity_id,
        "label": label,
        "start": fragments[0][0],
        "end": fragments[-1][1],
        "text": text,
    }


def _parse_ann(rel: str, content: str, document: str, issues: Issues | None) -> Entities:
    """The entities of a .ann file; problems go to ``issues`` (or are skipped if None)."""
    entities: Entities = []
    ids: set[str] = set()
    for number, line in lines(content):
        try:
            if line.startswith("T"):
                entity = _parse_entity(line, document)
                if entity["id"] in ids:
                    raise BadFile(f"duplicate id {entity['id']}")
                ids.add(str(entity["id"]))
                entities.append(entity)
            elif line[0] not in _OTHER_LINES:
                raise BadFile(
                    "unknown annotation line; brat lines start with T, R, E, A, M, N, * or #"
                )
            elif "\t" not in line:
                raise BadFile("malformed line; brat fields are tab-separated")
        except BadFile as exc:
            if issues is not None:
                issues.error(f"{rel}:{number}", str(exc))
    return entities


def _read_pair(root: Path, stem: str, issues: Issues | None) -> tuple[str, Entities] | None:
    """The document text and entities of one pair, or None if a file cannot be decoded."""
    texts: list[str] = []
    for suffix in PAIR:
        try:
            texts.append(read_text(root / f"{stem}{suffix}", bom=False))
        except BadFile as exc:
            if issues is not None:
                issues.error(f"{stem}{suffix}", str(exc))
            return None
    document, content = texts
    return document, _parse_ann(f"{stem}.ann", content, document, issues)
