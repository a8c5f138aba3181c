"""An algorithm's two images (train, predict) as the registry keeps them: their rows, made
when missing; the settings each runs with (command, args, typed parameters, device, the
predict image's API), checked for the kind they are for; and what the REST API shows of
them (``ImageInfo``: state, reference, digest, config, tags, the latest load job)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.algorithms.jobs import TARGET_TYPE
from workbench.algorithms.params import ImageSettings
from workbench.algorithms.schemas import ImageInfo
from workbench.enums import ImageKind, ImageState
from workbench.errors import Conflict, InvalidInput
from workbench.images import ImageConfig
from workbench.registry.models import AlgorithmImage, Job


def check_settings(kind: ImageKind, settings: ImageSettings) -> None:
    """What the settings' own validation cannot see: the kind they are for."""
    if kind is ImageKind.TRAIN and settings.api_spec is not None:
        raise InvalidInput(
            "train.api_spec: a training image serves no API; give the API spec under predict.",
            field="train.api_spec",
        )
    names = [param.name for param in settings.api_spec.params] if settings.api_spec else []
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise InvalidInput(
            f"{kind.value}.api_spec.params names {', '.join(twice)} more than once; give each "
            "input of the API once.",
            field=f"{kind.value}.api_spec.params",
        )


def image_query(algorithm_id: int, kind: ImageKind) -> sa.Select[tuple[AlgorithmImage]]:
    return sa.select(AlgorithmImage).where(
        AlgorithmImage.algorithm_id == algorithm_id, AlgorithmImage.kind == kind.value
    )


def image_row(s: Session, algorithm_id: int, kind: ImageKind) -> AlgorithmImage:
    """The image's row, made when missing (this service makes both with the algorithm;
    rows written by other means may lack one)."""
    image = s.scalar(image_query(algorithm_id, kind))
    if image is None:
        image = AlgorithmImage(algorithm_id=algorithm_id, kind=kind.value, state=ImageState.MISSING)
        s.add(image)
        s.flush()
    return image


def apply_settings(image: AlgorithmImage, settings: ImageSettings) -> None:
    image.command = list(settings.command)
    image.args = list(settings.args)
    image.env = {name: spec.model_dump(mode="json") for name, spec in settings.env.items()}
    image.device = settings.device
    image.api_spec = settings.api_spec.model_dump(mode="json") if settings.api_spec else {}


def image_settings(image: AlgorithmImage) -> ImageSettings:
    """How the image runs: its command, args, parameters, device and API spec."""
    return ImageSettings.model_validate(
        {
            "command": image.command or [],
            "args": image.args or [],
            "env": image.env or {},
            "device": image.device or "cpu",
            "api_spec": image.api_spec or None,
        }
    )


def stored_config(image: AlgorithmImage) -> ImageConfig | None:
    """The loaded image's config (None before the first load)."""
    if image.state != ImageState.READY or not image.config:
        return None
    return ImageConfig.model_validate({k: v for k, v in image.config.items() if k != "tags"})


def image_info(s: Session, image: AlgorithmImage) -> ImageInfo:
    stored: dict[str, Any] = dict(image.config or {})
    tags = stored.pop("tags", [])
    state = ImageState(image.state)
    return ImageInfo(
        settings=image_settings(image),
        state=state,
        state_reason=image.state_reason if state is ImageState.FAILED else "",
        image_ref=image.image_ref,
        digest=image.digest,
        source=image.source,
        source_detail=image.source_detail,
        config=ImageConfig.model_validate(stored) if stored else None,
        tags=tags,
        size=image.size,
        job_id=s.scalar(
            sa.select(sa.func.max(Job.id)).where(
                Job.target_type == TARGET_TYPE, Job.target_id == image.id
            )
        ),
        updated_at=image.updated_at,
    )


def image_kind(kind: ImageKind | str) -> ImageKind:
    try:
        return ImageKind(kind)
    except ValueError:
        raise InvalidInput(
            f"{kind!r} is not an image kind; an algorithm has a 'train' and a 'predict' image.",
            field="kind",
        ) from None


def loading_conflict(algorithm_id: int, kind: ImageKind) -> Conflict:
    return Conflict(
        f"The {kind.value} image of algorithm {algorithm_id} is being loaded already; wait "
        "until it is ready or failed, then try again.",
        state=ImageState.LOADING.value,
    )
