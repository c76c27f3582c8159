"""ImageNet weights emulated offline: random weights written where timm reads real ones, for tests that must build
the paper profile's ImageNet-started models on a machine that cannot download them (tests/test_paper_smoke.py).

timm resolves a model's weights from its pretrained config (timm.models._builder._resolve_pretrained_source): a
Hugging Face hub id loads `model.safetensors` from the hub cache (<HF_HOME>/hub/models--<org>--<name>/, a refs/main
file naming a snapshot folder); a model with only a URL (legacy_xception) loads the file named by the URL from
<TORCH_HOME>/hub/checkpoints/. Both are written here with the ImageNet model's own shapes (1000 classes)."""
from __future__ import annotations

import os
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file
from timm.models import get_pretrained_cfg

SNAPSHOT = "0" * 40  # the commit a refs/main names; any 40 hex digits


def write_cache(timm_names, root) -> dict:
    """Random ImageNet-shaped weights of each timm model under `root` (hf/ and torch/); returns the environment
    that points timm there, offline."""
    root = Path(root)
    hf, torch_home = root / "hf", root / "torch"
    for name in timm_names:
        cfg = get_pretrained_cfg(name)
        net = timm.create_model(name, pretrained=False)
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        if cfg.hf_hub_id:
            repo = hf / "hub" / ("models--" + cfg.hf_hub_id.replace("/", "--"))
            (repo / "refs").mkdir(parents=True, exist_ok=True)
            (repo / "refs" / "main").write_text(SNAPSHOT)
            snap = repo / "snapshots" / SNAPSHOT
            snap.mkdir(parents=True, exist_ok=True)
            save_file(state, str(snap / "model.safetensors"))
        elif cfg.url:
            folder = torch_home / "hub" / "checkpoints"
            folder.mkdir(parents=True, exist_ok=True)
            # timm reads a URL's file with torch.load: the emulated one is torch's format (weights only).
            torch.save(state, folder / os.path.basename(cfg.url))
        else:
            raise ValueError(f"timm model {name!r} names no weights source")
    return {"HF_HOME": str(hf), "TORCH_HOME": str(torch_home), "HF_HUB_OFFLINE": "1"}
