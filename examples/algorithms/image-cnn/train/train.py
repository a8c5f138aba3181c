"""Train a small convolutional image classifier with PyTorch (CPU or CUDA).

Follows Workbench's training-container contract (docs/contracts.md): reads the ``dir``
dataset (one folder per class) from ``$DATASET_DIR/train`` and ``$DATASET_DIR/test``,
logs loss and accuracies per epoch to ``$METRICS_FILE``, writes the test split's confusion
matrix to ``$EVALUATION_FILE`` and the model to ``$MODEL_DIR``:

- ``model.pt``: the network as TorchScript (``torch.jit.load`` needs no code from here);
- ``labels.json``: the class names, in the order of the network's outputs;
- ``preprocess.json``: how an image becomes the network's input (size, channels, scaling);
- ``signature.json``: the network's input and output tensors (names, dtypes, shapes);
- ``samples.npz``: held-out test images as the network takes them (``input``) with their
  class indices (``labels``): conversions are checked and evaluated on them.

When ``$BASE_MODEL_DIR`` holds a ``model.pt`` written by this script, training starts from
its weights (every tensor whose name and shape match; the last layer is new when the
classes differ).

Parameters (environment variables): ``EPOCHS`` (15), ``BATCH_SIZE`` (32), ``IMG_SIZE``
(32), ``DEVICE`` (cpu), ``LEARNING_RATE`` (0.003), ``WIDTH`` (16: channels of the first
convolution), ``SEED`` (0).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from workbench.training.contract import RunPaths, env_float, env_int, env_str
from workbench.training.pytorch import load_base_weights, start_torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
MEAN = 0.5
STD = 0.5
#: held-out samples written beside the model at most
HELD_OUT = 512


def list_images(folder: Path) -> tuple[list[Path], list[str]]:
    """Image files and their class (the name of their folder), in a stable order."""
    paths: list[Path] = []
    labels: list[str] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and p.name[0] != "."):
        for path in sorted(class_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and path.name[0] != ".":
                paths.append(path)
                labels.append(class_dir.name)
    if not paths:
        raise SystemExit(f"no images in {folder}: expected one folder of images per class")
    return paths, labels


def is_gray(paths: list[Path]) -> bool:
    for path in paths:
        with Image.open(path) as image:
            if image.mode not in GRAY_MODES:
                return False
    return True


def load_tensor(paths: list[Path], img_size: int, channels: int) -> torch.Tensor:
    """The images as one float tensor ``[N, C, H, W]``, scaled like :func:`preprocess`."""
    mode = "L" if channels == 1 else "RGB"
    batch = torch.empty((len(paths), channels, img_size, img_size))
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            picture = image.convert(mode).resize((img_size, img_size), Image.Resampling.BILINEAR)
        data = torch.frombuffer(bytearray(picture.tobytes()), dtype=torch.uint8)
        pixels = data.view(img_size, img_size, channels).permute(2, 0, 1).float() / 255
        batch[index] = (pixels - MEAN) / STD
    return batch


def conv_block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Three convolution blocks, global average pooling, one linear layer: any image size."""

    def __init__(self, channels: int, classes: int, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_block(channels, width),
            nn.MaxPool2d(2),
            conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x)))


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Logits for ``images``, in batches, with the model in evaluation mode."""
    model.eval()
    return torch.cat([model(part.to(device)).cpu() for part in images.split(256)])


def main() -> int:
    paths = RunPaths.from_env()
    data, model_dir = paths.dataset, paths.model
    epochs = env_int("EPOCHS", 15)
    batch_size = env_int("BATCH_SIZE", 32)
    img_size = env_int("IMG_SIZE", 32)
    learning_rate = env_float("LEARNING_RATE", 0.003)
    width = env_int("WIDTH", 16)
    device = start_torch(env_str("DEVICE", "cpu"), env_int("SEED", 0))

    train_paths, train_names = list_images(data / "train")
    test_paths, test_names = list_images(data / "test")
    classes = sorted(set(train_names))
    channels = 1 if is_gray(train_paths) else 3
    x_train = load_tensor(train_paths, img_size, channels)
    x_test = load_tensor(test_paths, img_size, channels)
    y_train = torch.tensor([classes.index(name) for name in train_names])
    print(
        f"{len(train_paths)} train and {len(test_paths)} test images, {len(classes)} classes, "
        f"{channels} channel(s) at {img_size}x{img_size}, loaded in "
        f"{paths.seconds()} s; {torch.get_num_threads()} threads on {device}",
        flush=True,
    )

    model = SmallCNN(channels, len(classes), width)
    load_base_weights(model, paths.base_model)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    steps = epochs * math.ceil(len(x_train) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps)
    known = [i for i, name in enumerate(test_names) if name in classes]
    y_known = torch.tensor([classes.index(test_names[i]) for i in known])
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x_train))
        total_loss = 0.0
        correct = 0
        for batch in order.split(batch_size):
            images, targets = x_train[batch].to(device), y_train[batch].to(device)
            logits = model(images)
            loss = F.cross_entropy(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == targets).sum())
        values: dict[str, float | int] = {
            "epoch": epoch,
            "loss": round(total_loss / len(x_train), 4),
            "train_accuracy": round(correct / len(x_train), 4),
        }
        if known:  # test images of classes the train split has
            test_logits = predict(model, x_test[known], device)
            values["test_loss"] = round(float(F.cross_entropy(test_logits, y_known)), 4)
            right = (test_logits.argmax(1) == y_known).float().mean()
            values["test_accuracy"] = round(float(right), 4)
        values["seconds"] = paths.seconds()
        paths.append_metrics(values)

    model.to("cpu").eval()
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.jit.script(model).save(str(model_dir / "model.pt"))
    (model_dir / "labels.json").write_text(json.dumps(classes) + "\n")
    preprocess = {"img_size": img_size, "channels": channels, "mean": MEAN, "std": STD}
    (model_dir / "preprocess.json").write_text(json.dumps(preprocess) + "\n")
    signature = {  # what the network takes and gives (conversion and serving read it)
        "inputs": [
            {"name": "input", "dtype": "float32", "shape": [-1, channels, img_size, img_size]}
        ],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": [-1, len(classes)]}],
    }
    (model_dir / "signature.json").write_text(json.dumps(signature) + "\n")
    held_out = known[:HELD_OUT]  # test images of known classes, with their class index
    np.savez(
        model_dir / "samples.npz",
        input=x_test[held_out].numpy(),
        labels=y_known[: len(held_out)].numpy(),
    )

    labels = sorted(set(classes) | set(test_names))
    predicted = predict(model, x_test, torch.device("cpu")).argmax(1).tolist()
    matrix = [[0] * len(labels) for _ in labels]
    for name, index in zip(test_names, predicted, strict=True):
        matrix[labels.index(name)][labels.index(classes[index])] += 1
    paths.write_evaluation(labels, matrix)
    hits = sum(matrix[i][i] for i in range(len(labels)))
    paths.finish(f"test accuracy {hits / len(test_names):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
