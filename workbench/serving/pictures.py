"""What a Python predictor that takes pictures shares (the preset image classifier and
detector use it): a request's base64 picture decoded, or :class:`BadInput` (a 400), and
made the network's input the way training made its pictures (:class:`Preprocess`).

Needs Pillow, which every environment image pins; the model server itself never imports
this module, only the predictors that take pictures do.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from workbench.serving.runtimes import BadInput


def decode_image(value: object) -> Image.Image:
    """The picture in a base64 string (optionally a ``data:image/...;base64,`` URL), the
    value of a request's ``image``."""
    if isinstance(value, bytes):  # the server hands strings on as UTF-8 bytes
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str) or not value:
        raise BadInput('"image" must be a base64-encoded PNG or JPEG')
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        image = Image.open(io.BytesIO(base64.b64decode(value, validate=True)))
        image.load()
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f'"image" is not valid base64: {exc}') from None
    except (UnidentifiedImageError, OSError) as exc:
        raise BadInput(f'"image" is not an image Pillow can read: {exc}') from None
    return image


@dataclass(frozen=True)
class Preprocess:
    """How training made a picture the network's input, as it wrote it to
    ``preprocess.json`` beside the model: resized to ``size`` x ``size`` (bilinear) in
    ``channels`` (1: grey, 3: RGB), scaled to 0..1, then ``(x - mean) / std``."""

    size: int
    mean: float
    std: float
    channels: int = 3

    @classmethod
    def read(cls, model_dir: Path) -> Preprocess:
        """The ``preprocess.json`` of the model in ``model_dir`` (RGB where it names no
        ``channels``)."""
        found = json.loads((model_dir / "preprocess.json").read_text())
        return cls(
            size=int(found["img_size"]),
            mean=float(found["mean"]),
            std=float(found["std"]),
            channels=int(found.get("channels", 3)),
        )

    def array(self, image: Image.Image) -> np.ndarray:
        """``image`` as one input of the network: ``[channels, size, size]`` float32."""
        picture = image.convert("L" if self.channels == 1 else "RGB").resize(
            (self.size, self.size), Image.Resampling.BILINEAR
        )
        pixels = np.asarray(picture, dtype=np.float32).reshape(self.size, self.size, -1)
        return (pixels.transpose(2, 0, 1) / 255 - self.mean) / self.std
