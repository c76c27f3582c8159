"""Batch norms folded into convolutions for scoring (nets.fold): the same outputs, or the net as it is."""
import pytest
import torch
from dflite.data.loader import CropDataset
from dflite.engine import train as train_module
from dflite.engine.train import predict
from dflite.nets import fold
from dflite.nets.models import create_model
from torch import nn


def trained_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Batch norms with running statistics and affine maps far from the identity, as after training."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(1 + torch.randn(n, generator=g) * 0.3)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.3)
    return model.eval()


@pytest.mark.parametrize("name, size", [("cnn5", 64), ("efficientnet_lite0", 64), ("efficientnet_b0", 64),
                                        ("resnet18", 64)])
def test_a_folded_net_gives_the_same_logits_without_batch_norms(name, size):
    torch.manual_seed(0)
    model = trained_statistics(create_model(name, input_size=size))
    x = torch.randn(6, 3, size, size)
    with torch.inference_mode():
        want = model(x)
        fast = fold.eval_net(model, x, want)
        assert fast is not model
        assert not any(type(m) is nn.BatchNorm2d or hasattr(m, "running_var") for m in fast.modules())
        assert torch.allclose(fast(x), want, atol=1e-4, rtol=1e-4)
        other = torch.randn(5, 3, size, size)
        assert torch.allclose(fast(other), model(other), atol=1e-4, rtol=1e-4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the model itself is untouched


def test_a_batch_norm_no_convolution_feeds_is_not_folded():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 96, 96)
    for name in ("meso4", "mesoinception4"):  # they say so
        model = trained_statistics(create_model(name, input_size=96))
        assert fold.folded(model) is None
    # a net that does not say so: folding across the ReLU changes its outputs, and the check refuses the copy
    relu_first = trained_statistics(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.BatchNorm2d(8)))
    assert fold.folded(relu_first) is not None
    with torch.inference_mode():
        assert fold.eval_net(relu_first, x, relu_first(x)) is relu_first


def test_predict_scores_with_the_folded_net_as_the_net_would(train_store, monkeypatch):
    torch.manual_seed(0)
    model = trained_statistics(create_model("cnn5", input_size=32)).to(memory_format=torch.channels_last)
    data = CropDataset(train_store, "test", 32)
    folded_scores = predict(model, data, 8, torch.device("cpu"))
    calls = []
    monkeypatch.setattr(train_module, "eval_net", lambda m, x, y: calls.append(1) or m)
    plain = predict(model, data, 8, torch.device("cpu"))
    assert calls == [1] and len(plain) == len(data) > 8
    assert abs(folded_scores - plain).max() < 1e-5
    assert predict(model, data, 8, torch.device("cpu"), bf16=True) is not None and calls == [1]  # bf16: as it is
