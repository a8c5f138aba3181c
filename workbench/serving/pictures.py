"""What a Python predictor that takes pictures shares (the preset image classifier and
detector use it): a request's base64 picture decoded, or :class:`BadInput` (a 400).

Needs Pillow, which every environment image pins; the model server itself never imports
this module, only the predictors that take pictures do.
"""

from __future__ import annotations

import base64
import binascii
import io

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
