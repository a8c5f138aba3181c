"""Train a small CenterNet-style object detector with PyTorch (CPU or CUDA).

Follows Workbench's training-container contract (docs/contracts.md): reads the ``json``
(COCO-style) dataset from ``$DATASET_DIR/train`` and ``$DATASET_DIR/test``
(``annotations.json`` and ``images/``), logs losses and test-split detection scores per
epoch to ``$METRICS_FILE``, writes the evaluation to ``$EVALUATION_FILE`` and the model to
``$MODEL_DIR``:

- ``model.pt``: TorchScript taking ``[B, 3, S, S]`` images and answering ``[B, K, 6]``
  detections (``x, y, w, h`` in input pixels, score, class index), decoding included;
- ``labels.json``: the category names, in the order of the class indices;
- ``preprocess.json``: the input size and scaling, and the default score threshold.

The network: a convolutional backbone down to stride 4 (dilated convolutions widen its
view), then three heads on that grid: a heatmap per category (where object centres are,
trained with the focal loss of CenterNet against Gaussian peaks), the box size and the
centre's offset within its cell. Decoding takes the local maxima of the best category's
heatmap.

Evaluation (``metrics`` of ``$EVALUATION_FILE``): ``precision``, ``recall`` and ``f1`` of
the detections scoring at least ``SCORE_THRESHOLD`` (a detection is right when its category
is and its box overlaps a true box of that category with IoU >= 0.5, each true box matched
once), and ``map50``, the mean over categories of the average precision at IoU 0.5. The
``labels`` and ``confusion_matrix`` compare the categories of the boxes found where true
boxes are (IoU >= 0.5, whatever the category).

When ``$BASE_MODEL_DIR`` holds a ``model.pt`` written by this script, training starts from
its weights (every tensor whose name and shape match).

Parameters (environment variables): ``EPOCHS`` (20), ``BATCH_SIZE`` (16), ``IMG_SIZE``
(64, a multiple of 4), ``DEVICE`` (cpu), ``LEARNING_RATE`` (0.004), ``WIDTH`` (16),
``SCORE_THRESHOLD`` (0.3), ``SEED`` (0).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from workbench.training.contract import RunPaths, env_float, env_int, env_str
from workbench.training.pytorch import load_base_weights, start_torch

STRIDE = 4
MEAN = 0.5
STD = 0.5
TOP_K = 50
IOU_THRESHOLD = 0.5
#: detections below this score are not kept for the average precision
MIN_SCORE = 0.01


# --------------------------------------------------------------------------- data


@dataclass
class Split:
    """A split resized to the input size: images, boxes (input pixels), their scale back."""

    images: torch.Tensor  # [N, 3, S, S]
    boxes: list[torch.Tensor] = field(default_factory=list)  # [M, 4] x, y, w, h
    classes: list[torch.Tensor] = field(default_factory=list)  # [M] class indices
    scales: list[tuple[float, float]] = field(default_factory=list)  # original / input


def read_coco(folder: Path) -> dict[str, Any]:
    path = folder / "annotations.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: the json format keeps its boxes there")
    return json.loads(path.read_text(encoding="utf-8-sig"))


def category_names(train: dict[str, Any]) -> tuple[list[str], dict[int, int]]:
    """The category names ordered by id, and each category id's class index."""
    categories = sorted(train["categories"], key=lambda c: int(c["id"]))
    names = [str(c["name"]) for c in categories]
    return names, {int(c["id"]): index for index, c in enumerate(categories)}


def load_split(folder: Path, coco: dict[str, Any], index_of: dict[int, int], size: int) -> Split:
    """The images of ``coco`` resized to ``size``, with the boxes of known categories."""
    images = sorted(coco["images"], key=lambda i: int(i["id"]))
    by_image: dict[int, list[dict[str, Any]]] = {}
    for annotation in coco["annotations"]:
        by_image.setdefault(int(annotation["image_id"]), []).append(annotation)
    split = Split(images=torch.empty((len(images), 3, size, size)))
    for n, info in enumerate(images):
        with Image.open(folder / "images" / str(info["file_name"])) as image:
            width, height = image.size
            picture = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        data = torch.frombuffer(bytearray(picture.tobytes()), dtype=torch.uint8)
        split.images[n] = (data.view(size, size, 3).permute(2, 0, 1).float() / 255 - MEAN) / STD
        sx, sy = width / size, height / size
        kept = [a for a in by_image.get(int(info["id"]), []) if int(a["category_id"]) in index_of]
        boxes = [[float(v) for v in a["bbox"]] for a in kept]
        split.boxes.append(
            torch.tensor([[x / sx, y / sy, w / sx, h / sy] for x, y, w, h in boxes]).view(-1, 4)
        )
        labels = [index_of[int(a["category_id"])] for a in kept]
        split.classes.append(torch.tensor(labels, dtype=torch.long))
        split.scales.append((sx, sy))
    return split


def targets(split: Split, classes: int, size: int) -> tuple[torch.Tensor, ...]:
    """The training targets on the stride-4 grid (grid units): heatmaps with a Gaussian
    around each box centre, scaled so that the cells nearest the centre are 1 (two or four
    cells when the centre lies on a border between cells: the network cannot tell them
    apart), and at those cells the box size and the centre's offset from the cell."""
    grid = size // STRIDE
    count = len(split.boxes)
    heat = torch.zeros((count, classes, grid, grid))
    box_size = torch.zeros((count, 2, grid, grid))
    offset = torch.zeros((count, 2, grid, grid))
    mask = torch.zeros((count, 1, grid, grid))
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    for n, (boxes, labels) in enumerate(zip(split.boxes, split.classes, strict=True)):
        for (x, y, w, h), label in zip(boxes.tolist(), labels.tolist(), strict=True):
            cx, cy = (x + w / 2) / STRIDE, (y + h / 2) / STRIDE
            sigma = max(0.5, 0.15 * min(w, h) / STRIDE)
            peak = torch.exp(-((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2) / (2 * sigma**2))
            peak = peak / peak.max()
            heat[n, label] = torch.maximum(heat[n, label], peak)
            for row, col in (peak == 1).nonzero().tolist():
                box_size[n, :, row, col] = torch.tensor([w / STRIDE, h / STRIDE])
                offset[n, :, row, col] = torch.tensor([cx - col, cy - row])
                mask[n, 0, row, col] = 1
    return heat, box_size, offset, mask


# --------------------------------------------------------------------------- model


def conv_block(inputs: int, outputs: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


def head(channels: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, outputs, 1),
    )


class CenterNet(nn.Module):
    """Backbone to stride 4, then heatmap (one per category), size and offset heads."""

    def __init__(self, classes: int, width: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            conv_block(3, width),
            nn.MaxPool2d(2),
            conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            conv_block(2 * width, 4 * width),
            conv_block(4 * width, 4 * width, dilation=2),
            conv_block(4 * width, 4 * width, dilation=4),
        )
        self.heatmap = head(4 * width, classes)
        self.size = head(4 * width, 2)
        self.offset = head(4 * width, 2)
        last = self.heatmap[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, -2.19)  # a prior of 0.1 per cell: a stable start

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.backbone(x)
        return self.heatmap(features), self.size(features), self.offset(features)


class Detector(nn.Module):
    """The network and its decoding: images in, ``[B, K, 6]`` detections out."""

    def __init__(self, net: CenterNet, top_k: int = TOP_K) -> None:
        super().__init__()
        self.net = net
        self.top_k = top_k
        self.stride = STRIDE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heat, size, offset = self.net(x)
        scores, classes = torch.sigmoid(heat).max(dim=1, keepdim=True)
        peaks = scores * (F.max_pool2d(scores, 3, stride=1, padding=1) == scores).float()
        batch, width = x.size(0), heat.size(3)
        cells = heat.size(2) * width
        top, index = peaks.view(batch, cells).topk(min(self.top_k, cells), dim=1)
        found = index.unsqueeze(1).expand(batch, 2, index.size(1))
        wh = size.view(batch, 2, cells).gather(2, found).clamp(min=0) * self.stride
        shift = offset.view(batch, 2, cells).gather(2, found)
        cx = ((index % width).float() + shift[:, 0]) * self.stride
        cy = (torch.div(index, width, rounding_mode="floor").float() + shift[:, 1]) * self.stride
        label = classes.view(batch, cells).gather(1, index).float()
        return torch.stack(
            [cx - wh[:, 0] / 2, cy - wh[:, 1] / 2, wh[:, 0], wh[:, 1], top, label], dim=2
        )


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, per object."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    pos = torch.log(p) * (1 - p) ** 2 * positive
    neg = torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - positive)
    return -(pos.sum() + neg.sum()) / positive.sum().clamp(min=1)


# --------------------------------------------------------------------------- evaluation


def iou(box: list[float], others: torch.Tensor) -> torch.Tensor:
    """IoU of one ``[x, y, w, h]`` box with each row of ``others``."""
    if others.numel() == 0:
        return torch.zeros(0)
    x1 = torch.clamp(others[:, 0], min=box[0])
    y1 = torch.clamp(others[:, 1], min=box[1])
    x2 = torch.clamp(others[:, 0] + others[:, 2], max=box[0] + box[2])
    y2 = torch.clamp(others[:, 1] + others[:, 3], max=box[1] + box[3])
    inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    return inter / (box[2] * box[3] + others[:, 2] * others[:, 3] - inter).clamp(min=1e-9)


@torch.no_grad()
def detect(detector: Detector, split: Split, device: torch.device) -> list[torch.Tensor]:
    """Per image, its detections ``[K, 6]`` scoring at least :data:`MIN_SCORE`."""
    detector.eval()
    out = torch.cat([detector(part.to(device)).cpu() for part in split.images.split(64)])
    return [rows[rows[:, 4] >= MIN_SCORE] for rows in out]


def average_precision(hits: list[tuple[float, bool]], truths: int) -> float:
    """The area under the precision-recall curve (every point, precision made monotone)."""
    if truths == 0:
        return 0.0
    hits = sorted(hits, key=lambda hit: -hit[0])
    precisions: list[float] = []
    recalls: list[float] = []
    true_positives = 0
    for rank, (_, hit) in enumerate(hits, start=1):
        true_positives += hit
        precisions.append(true_positives / rank)
        recalls.append(true_positives / truths)
    for i in range(len(precisions) - 2, -1, -1):
        precisions[i] = max(precisions[i], precisions[i + 1])
    area, previous = 0.0, 0.0
    for precision, recall in zip(precisions, recalls, strict=True):
        area += (recall - previous) * precision
        previous = recall
    return area


def evaluate(
    detections: list[torch.Tensor], split: Split, classes: int, threshold: float
) -> tuple[dict[str, float], list[list[int]]]:
    """Precision, recall, F1 (at ``threshold``) and mAP@0.5; the matched boxes' confusion."""
    hits: list[list[tuple[float, bool]]] = [[] for _ in range(classes)]
    truths = [0] * classes
    tp = fp = 0
    confusion = [[0] * classes for _ in range(classes)]
    for found, boxes, labels in zip(detections, split.boxes, split.classes, strict=True):
        for label in labels.tolist():
            truths[label] += 1
        order = found[:, 4].argsort(descending=True)
        found = found[order]
        taken = torch.zeros(len(boxes), dtype=torch.bool)
        for x, y, w, h, score, label in found.tolist():
            overlap = iou([x, y, w, h], boxes)
            overlap[(labels != int(label)) | taken] = 0
            best = int(overlap.argmax()) if len(overlap) else -1
            hit = best >= 0 and float(overlap[best]) >= IOU_THRESHOLD
            if hit:
                taken[best] = True
            hits[int(label)].append((score, hit))
            if score >= threshold:
                tp, fp = tp + hit, fp + (not hit)
        kept = found[found[:, 4] >= threshold]
        used = torch.zeros(len(kept), dtype=torch.bool)
        for box, label in zip(boxes.tolist(), labels.tolist(), strict=True):
            overlap = iou(box, kept[:, :4])
            overlap[used] = 0
            if len(overlap) and float(overlap.max()) >= IOU_THRESHOLD:
                best = int(overlap.argmax())
                used[best] = True
                confusion[label][int(kept[best, 5])] += 1
    precision = tp / max(tp + fp, 1)
    recall = tp / max(sum(truths), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    present = [c for c in range(classes) if truths[c]]
    map50 = sum(average_precision(hits[c], truths[c]) for c in present) / max(len(present), 1)
    metrics = {"precision": precision, "recall": recall, "f1": f1, "map50": map50}
    return {k: round(v, 4) for k, v in metrics.items()}, confusion


# --------------------------------------------------------------------------- main


def main() -> int:
    paths = RunPaths.from_env()
    data, model_dir = paths.dataset, paths.model
    epochs = env_int("EPOCHS", 20)
    batch_size = env_int("BATCH_SIZE", 16)
    img_size = max(STRIDE, env_int("IMG_SIZE", 64) // STRIDE * STRIDE)
    learning_rate = env_float("LEARNING_RATE", 0.004)
    width = env_int("WIDTH", 16)
    threshold = env_float("SCORE_THRESHOLD", 0.3)
    device = start_torch(env_str("DEVICE", "cpu"), env_int("SEED", 0))

    train_coco = read_coco(data / "train")
    names, index_of = category_names(train_coco)
    train = load_split(data / "train", train_coco, index_of, img_size)
    test = load_split(data / "test", read_coco(data / "test"), index_of, img_size)
    heat, box_size, offset, mask = targets(train, len(names), img_size)
    print(
        f"{len(train.boxes)} train and {len(test.boxes)} test images, "
        f"{sum(len(b) for b in train.boxes)} train boxes, categories {names}, input "
        f"{img_size}x{img_size}, loaded in {paths.seconds()} s; "
        f"{torch.get_num_threads()} threads on {device}",
        flush=True,
    )

    detector = Detector(CenterNet(len(names), width))
    load_base_weights(detector, paths.base_model)
    detector.to(device)
    optimizer = torch.optim.Adam(detector.parameters(), lr=learning_rate)
    steps = epochs * math.ceil(len(train.boxes) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps)
    for epoch in range(1, epochs + 1):
        detector.train()
        totals = torch.zeros(3)
        for batch in torch.randperm(len(train.boxes)).split(batch_size):
            flip = torch.rand(len(batch)) < 0.5
            images = train.images[batch]
            parts = [heat[batch], box_size[batch], offset[batch], mask[batch]]
            images[flip] = images[flip].flip(3)
            for part in parts:
                part[flip] = part[flip].flip(3)
            # a flipped centre keeps its cell only when its offset is mirrored inside it
            parts[2][:, 0][flip] = (1 - parts[2][:, 0][flip]) * parts[3][:, 0][flip]
            heat_t, size_t, offset_t, mask_t = (part.to(device) for part in parts)
            heat_p, size_p, offset_p = detector.net(images.to(device))
            count = mask_t.sum().clamp(min=1)
            losses = torch.stack(
                [
                    focal_loss(heat_p, heat_t),
                    (F.l1_loss(size_p, size_t, reduction="none") * mask_t).sum() / count,
                    (F.l1_loss(offset_p, offset_t, reduction="none") * mask_t).sum() / count,
                ]
            )
            loss = losses[0] + 0.1 * losses[1] + losses[2]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            totals += losses.detach().cpu() * len(batch)
        totals /= len(train.boxes)
        scores, _ = evaluate(detect(detector, test, device), test, len(names), threshold)
        paths.append_metrics(
            {
                "epoch": epoch,
                "loss": round(float(totals[0] + 0.1 * totals[1] + totals[2]), 4),
                "heatmap_loss": round(float(totals[0]), 4),
                "size_loss": round(float(totals[1]), 4),
                "offset_loss": round(float(totals[2]), 4),
                **{f"test_{key}": value for key, value in scores.items()},
                "seconds": paths.seconds(),
            },
        )

    detector.to("cpu").eval()
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.jit.script(detector).save(str(model_dir / "model.pt"))
    (model_dir / "labels.json").write_text(json.dumps(names) + "\n")
    preprocess = {
        "img_size": img_size,
        "mean": MEAN,
        "std": STD,
        "score_threshold": threshold,
    }
    (model_dir / "preprocess.json").write_text(json.dumps(preprocess) + "\n")

    scores, confusion = evaluate(
        detect(detector, test, torch.device("cpu")), test, len(names), threshold
    )
    paths.write_evaluation(names, confusion, scores)
    paths.finish(f"test {json.dumps(scores)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
