"""What the publish form of the Services section offers: a model's versions, each labelled
with its verified formats (the newest verified one chosen), the formats a version may be
served in, and the service's name suggested from what it serves."""

from __future__ import annotations

from workbench.models.schemas import ModelDetail, ModelVersionInfo


def _verified(version: ModelVersionInfo) -> list[str]:
    """The formats of ``version`` converted and verified."""
    return [f.format for f in version.formats if f.state == "verified"]


def _version_label(version: ModelVersionInfo) -> str:
    return f"v{version.version} · {', '.join(['native', *_verified(version)])}"


def version_choices(detail: ModelDetail) -> tuple[list[tuple[str, int]], int | None]:
    """The model's versions, newest first, and the one chosen: the newest version
    converted and verified, else the newest."""
    newest = list(reversed(detail.versions))
    options = [(_version_label(v), v.id) for v in newest]
    chosen = next((v.id for v in newest if _verified(v)), newest[0].id if newest else None)
    return options, chosen


def format_choices(version: ModelVersionInfo) -> list[tuple[str, str]]:
    """The formats ``version`` may be served in: its default (the value ""), native, and
    each format converted and verified."""
    default = version.default_format or "native"
    options = [(f"default: {default}", ""), ("native", "native")]
    options += [(fmt, fmt) for fmt in _verified(version)]
    return options


def service_name(model: str) -> str:
    """A service name from a model's: lowercase letters, digits and dashes."""
    name = "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-")
    return name[:63] or "service"
