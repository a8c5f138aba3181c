"""What a service serves, resolved when it is made: a model version's format and the runtime
that runs it (the one asked, else the version's default serving format, else its native
model; only verified formats, and a signature where the runtime needs one), or an
algorithm's inference image (loaded, CPU) and the API it declares."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.access import get_visible
from workbench.algorithms.params import ApiSpec
from workbench.deployments.schemas import IMAGE_FORMAT
from workbench.enums import ImageKind, ImageState
from workbench.errors import InvalidInput
from workbench.models.formats import RUNTIME, native_kind
from workbench.registry.models import Algorithm, AlgorithmImage, ModelFormat, ModelVersion, Service
from workbench.store import ArtifactStore
from workbench.users import Actor

#: native kind -> the model server's runtime for it (a Keras file is served as a format)
NATIVE_RUNTIME = {
    "onnx": "onnx",
    "torchscript": "torchscript",
    "sklearn": "sklearn",
    "savedmodel": "savedmodel",
}
#: the runtimes whose models say what their inputs and outputs are (no signature needed)
SELF_DESCRIBED = frozenset({"onnx", "savedmodel"})


def served_format(
    s: Session, store: ArtifactStore, version: ModelVersion, asked: str | None
) -> tuple[str, str]:
    """The format a new service serves, and its runtime (see the module doc)."""
    verified = dict(
        s.execute(
            sa.select(ModelFormat.format, ModelFormat.file).where(
                ModelFormat.model_version_id == version.id, ModelFormat.state == "verified"
            )
        ).all()
    )
    fmt = asked or version.default_format or "native"
    if fmt == "native":
        native = native_kind(store.path(version.storage_key))
        runtime = NATIVE_RUNTIME.get(native or "")
        if runtime is None:
            choices = ", ".join(sorted(verified)) or "none: convert it first"
            raise InvalidInput(
                f"Version {version.id}'s native model ({native or 'none found'}) is not served "
                f"as it is; serve one of its verified formats ({choices}).",
                field="format",
            )
    elif fmt not in verified:
        raise InvalidInput(
            f"Version {version.id} has no verified {fmt} format; serve native or one of "
            f"{', '.join(sorted(verified)) or 'none (convert it first)'}.",
            field="format",
        )
    else:
        runtime = RUNTIME[fmt]
        if runtime not in NATIVE_RUNTIME.values():
            raise InvalidInput(
                f"The {fmt} format is not served yet; serve onnx or native.", field="format"
            )
    if not version.signature and runtime not in SELF_DESCRIBED:
        raise InvalidInput(
            f"Version {version.id} declares no signature, which its {runtime} runtime needs: "
            f"set one with PATCH /model-versions/{version.id}.",
            field="signature",
        )
    return fmt, runtime


def inference_image(s: Session, actor: Actor, algorithm_id: int) -> AlgorithmImage:
    """The algorithm's inference image, if the actor sees the algorithm and it is loaded."""
    algorithm = get_visible(s, Algorithm, algorithm_id, actor, "algorithm")
    image = s.scalar(
        sa.select(AlgorithmImage).where(
            AlgorithmImage.algorithm_id == algorithm_id,
            AlgorithmImage.kind == ImageKind.PREDICT.value,
        )
    )
    if image is None or image.state != ImageState.READY or not image.image_ref:
        state = image.state if image is not None else ImageState.MISSING
        raise InvalidInput(
            f"Algorithm {algorithm.name} has no inference image ready ({state}); upload or pull "
            "its predict image first (PUT or POST /algorithms/{id}/images/predict).",
            field="algorithm_id",
        )
    if image.device == "gpu":
        raise InvalidInput(
            f"Algorithm {algorithm.name}'s inference image asks for a GPU, which services do "
            "not place yet; set its device to cpu.",
            field="algorithm_id",
        )
    return image


def api_spec(s: Session, row: Service) -> dict[str, Any] | None:
    """An inference-image service's API (its algorithm's spec, or the contract's default)."""
    if row.runtime != IMAGE_FORMAT or row.algorithm_id is None:
        return None
    spec = s.scalar(
        sa.select(AlgorithmImage.api_spec).where(
            AlgorithmImage.algorithm_id == row.algorithm_id,
            AlgorithmImage.kind == ImageKind.PREDICT.value,
        )
    )
    return ApiSpec.model_validate(spec or {}).model_dump(mode="json")
