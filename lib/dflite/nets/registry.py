"""The model names and what each needs to be built, trained, pruned and explained: no torch here, so that the CLI
can list the choices without importing it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    name: str
    input_size: int      # the architecture's own input side in pixels
    classifier: str      # module holding the output layer
    first_conv: str      # the first convolution (input channels)
    gradcam_layers: tuple  # Grad-CAM candidates, deepest first: the deepest with a map of at least 6 x 6 at the
                           # model's input size is used (a 3 x 3 map can only say "centre" or "border")
    timm_name: str = ""  # timm architecture, or "" for dflite's own


_EFFICIENTNET_CAM = ("conv_head", "blocks.5", "blocks.4", "blocks.3", "blocks.2")  # strides 32, 32, 16, 16, 8
REGISTRY = {
    "meso4": ModelInfo("meso4", 256, "head.fc2", "conv1", ("conv4", "conv3", "conv2")),
    "mesoinception4": ModelInfo("mesoinception4", 256, "head.fc2", "incep1.b1", ("conv4", "conv3", "incep2")),
    "cnn5": ModelInfo("cnn5", 128, "fc", "features.0.conv", ("features.4.act", "features.3.act", "features.2.act")),
    "resnet18": ModelInfo("resnet18", 224, "fc", "conv1", ("layer4", "layer3", "layer2"), "resnet18"),
    "xception": ModelInfo("xception", 299, "fc", "conv1", ("act4", "block11", "block3"), "legacy_xception"),
    "efficientnet_b0": ModelInfo("efficientnet_b0", 224, "classifier", "conv_stem", _EFFICIENTNET_CAM,
                                 "efficientnet_b0"),
    "efficientnet_b1": ModelInfo("efficientnet_b1", 240, "classifier", "conv_stem", _EFFICIENTNET_CAM,
                                 "efficientnet_b1"),
    "efficientnet_b2": ModelInfo("efficientnet_b2", 260, "classifier", "conv_stem", _EFFICIENTNET_CAM,
                                 "efficientnet_b2"),
    "efficientnet_b3": ModelInfo("efficientnet_b3", 300, "classifier", "conv_stem", _EFFICIENTNET_CAM,
                                 "efficientnet_b3"),
    "efficientnet_lite0": ModelInfo("efficientnet_lite0", 224, "classifier", "conv_stem", _EFFICIENTNET_CAM,
                                    "efficientnet_lite0"),
}


def list_models() -> list:
    return sorted(REGISTRY)


def model_info(name: str) -> ModelInfo:
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(list_models())}")
    return REGISTRY[name]


