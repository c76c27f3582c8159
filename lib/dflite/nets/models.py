"""Model registry: create_model(name), list_models(), model_info(name).

MesoNet and CNN-5 are written here; ResNet-18, Xception and EfficientNet come from timm. Every
entry records its default input size and the names of its classifier, first conv and Grad-CAM
layers (tests check each name resolves in the built model).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .registry import REGISTRY, ModelInfo, list_models, model_info  # noqa: F401 - the registry's home is light


class Meso4(nn.Module):
    """Meso-4 (Afchar et al., WIFS 2018), as in the authors' Keras code.

    Four conv blocks (conv-ReLU, batch norm, max pool: 3x3x8, 5x5x8, 5x5x16, 5x5x16; pools 2, 2, 2, 4),
    dropout 0.5, a 16-unit hidden layer with LeakyReLU(0.1), dropout 0.5, one output. 27,977
    parameters at 256 px with one output. Other input sizes change only the hidden layer's width.
    """

    fold_bn = False  # each batch norm follows a ReLU: no convolution feeds it directly (nets.fold)

    def __init__(self, num_classes: int = 1, input_size: int = 256):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 5, padding=2), nn.BatchNorm2d(8)
        self.conv3, self.bn3 = nn.Conv2d(8, 16, 5, padding=2), nn.BatchNorm2d(16)
        self.conv4, self.bn4 = nn.Conv2d(16, 16, 5, padding=2), nn.BatchNorm2d(16)
        self.head = _meso_head(16 * (input_size // 32) ** 2, num_classes)

    def forward(self, x):  # (B, 3, S, S) -> (B, num_classes)
        x = nn.functional.max_pool2d(self.bn1(torch.relu(self.conv1(x))), 2)
        x = nn.functional.max_pool2d(self.bn2(torch.relu(self.conv2(x))), 2)
        x = nn.functional.max_pool2d(self.bn3(torch.relu(self.conv3(x))), 2)
        x = nn.functional.max_pool2d(self.bn4(torch.relu(self.conv4(x))), 4)
        return self.head(x)


def _meso_head(flat: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), drop1=nn.Dropout(0.5), fc1=nn.Linear(flat, 16),
                                     act=nn.LeakyReLU(0.1), drop2=nn.Dropout(0.5), fc2=nn.Linear(16, num_classes)))


class Inception(nn.Module):
    """MesoInception block: 1x1, 1x1->3x3, 1x1->3x3 dilated 2, 1x1->3x3 dilated 3, concatenated."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int):
        super().__init__()
        self.b1 = nn.Conv2d(cin, a, 1)
        self.b2 = nn.Sequential(nn.Conv2d(cin, b, 1), nn.ReLU(), nn.Conv2d(b, b, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(cin, c, 1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=2, dilation=2))
        self.b4 = nn.Sequential(nn.Conv2d(cin, d, 1), nn.ReLU(), nn.Conv2d(d, d, 3, padding=3, dilation=3))

    def forward(self, x):
        return torch.relu(torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1))


class MesoInception4(nn.Module):
    """MesoInception-4 (Afchar et al., 2018): two inception blocks (1,4,4,2) and (2,4,4,2), then
    Meso-4's last two conv blocks and head."""

    fold_bn = False  # batch norms after a concatenation of branches or a ReLU (nets.fold)

    def __init__(self, num_classes: int = 1, input_size: int = 256):
        super().__init__()
        self.incep1, self.bn1 = Inception(3, 1, 4, 4, 2), nn.BatchNorm2d(11)
        self.incep2, self.bn2 = Inception(11, 2, 4, 4, 2), nn.BatchNorm2d(12)
        self.conv3, self.bn3 = nn.Conv2d(12, 16, 5, padding=2), nn.BatchNorm2d(16)
        self.conv4, self.bn4 = nn.Conv2d(16, 16, 5, padding=2), nn.BatchNorm2d(16)
        self.head = _meso_head(16 * (input_size // 32) ** 2, num_classes)

    def forward(self, x):
        x = nn.functional.max_pool2d(self.bn1(self.incep1(x)), 2)
        x = nn.functional.max_pool2d(self.bn2(self.incep2(x)), 2)
        x = nn.functional.max_pool2d(self.bn3(torch.relu(self.conv3(x))), 2)
        x = nn.functional.max_pool2d(self.bn4(torch.relu(self.conv4(x))), 4)
        return self.head(x)


class CNN5(nn.Module):
    """CNN-5, dflite's definition (the lottery-ticket study names a CNN-5 but did not publish it).

    Five blocks of 3x3 conv, batch norm, ReLU and 2x2 max pool with 16, 32, 64, 128 and 128
    channels, global average pooling, dropout 0.3 and one linear output: 245,521 parameters,
    any input size of at least 32 px.
    """

    def __init__(self, num_classes: int = 1, input_size: int = 128, widths=(16, 32, 64, 128, 128)):
        super().__init__()
        blocks, cin = [], 3
        for w in widths:
            blocks.append(nn.Sequential(OrderedDict(conv=nn.Conv2d(cin, w, 3, padding=1, bias=False),
                                                    bn=nn.BatchNorm2d(w), act=nn.ReLU(), pool=nn.MaxPool2d(2))))
            cin = w
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.drop(self.pool(self.features(x)).flatten(1)))


_OWN = {"meso4": Meso4, "mesoinception4": MesoInception4, "cnn5": CNN5}
def create_model(name: str, num_classes: int = 1, pretrained: bool = False, input_size: int | None = None) -> nn.Module:
    """Build a detector; `pretrained` loads timm's ImageNet weights (from the local cache offline).

    The model carries `dflite_spec` (registry name, input size, outputs): what a checkpoint needs to
    rebuild it (nets.checkpoint adds the layer shapes of a pruned net).
    """
    info = model_info(name)
    size = input_size or info.input_size
    model = _build(info, num_classes, pretrained, size)
    model.dflite_spec = {"name": name, "input_size": size, "num_classes": num_classes}
    return model


def _build(info: ModelInfo, num_classes: int, pretrained: bool, input_size: int) -> nn.Module:
    name = info.name
    if not info.timm_name:
        if pretrained:
            raise ValueError(f"{name} has no ImageNet weights (it is trained from scratch in the studies)")
        return _OWN[name](num_classes=num_classes, input_size=input_size)
    import timm

    if not pretrained:
        return _small_head(timm.create_model(info.timm_name, pretrained=False, num_classes=num_classes))
    if name == "efficientnet_lite0":  # offline, from a pinned PyPI package (nets.lite0_imagenet), never the hub
        from .lite0_imagenet import load_imagenet

        return _small_head(load_imagenet(timm.create_model(info.timm_name, pretrained=False, num_classes=num_classes)))
    try:
        return _small_head(timm.create_model(info.timm_name, pretrained=True, num_classes=num_classes))
    except Exception as e:  # offline hub, missing cache entry, proxy errors: all the same to the user
        raise RuntimeError(
            f"ImageNet weights for {name} (timm '{info.timm_name}') are not in the local cache and could not be "
            f"downloaded ({type(e).__name__}). On a machine with internet run\n"
            f"  python -c \"import timm; timm.create_model('{info.timm_name}', pretrained=True)\"\n"
            f"then {weights_location(info.timm_name)}, or train with pretrained=False.") from None


def weights_location(timm_name: str) -> str:
    """Where timm keeps `timm_name`'s ImageNet weights, as advice: models with a Hugging Face hub id load from the hub
    cache; the others (legacy_xception) from a release file in torch's hub cache (timm's _resolve_pretrained_source)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(timm_name)
    if cfg is not None and cfg.hf_hub_id:
        folder = "models--" + cfg.hf_hub_id.replace("/", "--")
        return (f"copy its ~/.cache/huggingface/hub/{folder} folder into ~/.cache/huggingface/hub on this machine "
                "(or set HF_HOME to a folder whose hub/ holds it; HF_HUB_OFFLINE=1 stops the download attempts)")
    if cfg is not None and cfg.url:
        file = cfg.url.rsplit("/", 1)[-1]
        return (f"copy the file {file} into ~/.cache/torch/hub/checkpoints on this machine (or set TORCH_HOME to a "
                "folder whose hub/checkpoints holds it)")
    return "timm names no download for it: pass the weights yourself"


def _small_head(model: nn.Module) -> nn.Module:
    """Re-initialise a timm classifier as N(0, 0.01), bias 0.

    timm's EfficientNet init draws the head from U(-1/sqrt(fan_out), ..): with one output that is
    U(-1, 1) over 1280 features, initial logits in the tens and a training loss of 3-5 instead of
    0.69. A small head starts every model at chance and lets the features learn first.
    """
    head = model.get_classifier()
    if isinstance(head, nn.Linear):
        nn.init.normal_(head.weight, std=0.01)
        nn.init.zeros_(head.bias)
    return model


def output_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """What a net's logits say: a detector's fake probability (B,) from its one output, or an attribution head's class
    probabilities (B, K) (config.ATTRIBUTION_CLASSES, real first)."""
    logits = logits.float()
    return torch.sigmoid(logits.squeeze(1)) if logits.shape[1] == 1 else logits.softmax(1)


def fake_probability(probs):
    """The fake probability from `output_probabilities`' values: a detector's itself, a head's 1 - p(real)."""
    return probs if probs.ndim == 1 else 1 - probs[:, 0]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
