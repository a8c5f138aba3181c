"""What the PyTorch training scripts share (the preset image classifier and detector under
examples/algorithms import it): the device, threads and seed a run trains with, and the
start of transfer training from a base model's weights.

Only the pytorch environment images have torch, and Workbench itself never imports this
module: each function imports torch where it runs, so the module loads on a machine
without torch like the rest of the package. What needs no framework is in
:mod:`~workbench.training.contract`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from workbench.training.contract import cpu_limit, device_name

if TYPE_CHECKING:
    import torch
    from torch import nn


def start_torch(wanted: str, seed: int) -> torch.device:
    """The device to train on for the ``DEVICE`` parameter's value ``wanted``
    (:func:`~workbench.training.contract.device_name`), once torch's threads are set to
    the CPUs this container may use and its random seed to ``seed``."""
    import torch

    torch.set_num_threads(cpu_limit())
    torch.manual_seed(seed)
    return torch.device(device_name(wanted, torch.cuda.is_available()))


def load_base_weights(model: nn.Module, base_dir: Path | None) -> None:
    """Copy into ``model`` the tensors of the base model ``base_dir/model.pt`` (TorchScript,
    as these scripts write it) whose name and shape match, saying how many it took and which
    of ``model``'s are new; nothing when the run has no base model."""
    import torch

    if base_dir is None or not (base_dir / "model.pt").is_file():
        if base_dir is not None and base_dir.is_dir() and any(base_dir.iterdir()):
            print(f"BASE_MODEL_DIR {base_dir} has no model.pt: training from scratch")
        return
    base = torch.jit.load(str(base_dir / "model.pt"), map_location="cpu").state_dict()
    own = model.state_dict()
    taken = {k: v for k, v in base.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict({**own, **taken})
    skipped = sorted(set(own) - set(taken))
    print(
        f"transfer: {len(taken)} of {len(own)} tensors from {base_dir / 'model.pt'}"
        + (f"; new: {', '.join(skipped)}" if skipped else ""),
        flush=True,
    )
