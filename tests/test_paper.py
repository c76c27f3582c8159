"""The paper profile's data path on a root in the real FF++ layout: inspect -> extract -> a training step,
and `make reproduce PROFILE=paper DATA_ROOT=...` handing that root to every notebook."""
import shutil

import pytest
from dflite import reproduce
from dflite.config import SynthConfig, override, resolve
from dflite.data.sources import inspect_ffpp
from dflite.engine.runs import train_run
from dflite.engine.train import fit, input_size, seeded_model
from dflite.studies import crop_store


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    """An FF++ root in the real layout at a real-ish frame size (256 px, faces ~180 px), copied out of the
    generator's folder so nothing marks it as synthetic."""
    from dflite.data.synth import generate

    base = tmp_path_factory.mktemp("paper")
    cfg = override(SynthConfig(), identities=6, frames=6, frame_size=256, patch_size=176, compressions=("c23",),
                   of_images=(1, 1, 1, 1))
    made = generate(base / "synth", seed=5, cfg=cfg, workers=1, progress=False)
    root = base / "FaceForensics++"
    shutil.copytree(made.ffpp_root, root)
    return root


def test_paper_profile_inspects_extracts_and_trains_on_a_real_root(real_root):
    assert inspect_ffpp(real_root)["videos"].loc["Deepfakes", "c23"] == 6
    paper = resolve("paper", dataset="ffpp", data_root=str(real_root), workers=1)
    store = crop_store(paper)  # capstone sampling, 299 px crops (Xception's input)
    assert store.kind == "ffpp" and not store.synthetic and len(store.index) > 20
    assert store.root.parent.name == "paper" and store.root.name.startswith("ffpp_")
    assert set(store.index["split"]) == {"train", "val", "test"}
    # The paper recipe with one optimizer step (ImageNet weights off: nothing can be downloaded here).
    cfg = override(paper.recipe("cnn5"), pretrained=False, epochs=1, epoch_size=8, batch_size=8)
    run = train_run("paper", "baseline", "cnn5", "ffpp", cfg, store, 0, input_size(cfg, "cnn5"))
    result = fit(seeded_model("cnn5", cfg, 0), store, cfg, run, progress=False)
    assert result.input_size == 128 and result.history["images"].tolist() == [8]
    assert run.identity["data"]["synthetic"] is False and run.dir.parent.name.startswith("baseline_cnn5_ffpp_")


def test_reproduce_gives_every_notebook_the_data_root(real_root, monkeypatch, tmp_path):
    import papermill

    seen = {}
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda nb, out, parameters, **kw: seen.__setitem__(nb.split("/")[-1], parameters))
    reproduce.run("paper", out_dir=tmp_path, progress=False, data_root=str(real_root))
    assert seen.keys() == {p.name for p in reproduce.notebooks()}
    for name, params in seen.items():
        assert params["dataset"] == "ffpp" and params["data_root"] == str(real_root.resolve()), name


def test_a_missing_root_is_refused_and_a_wrong_one_stops_the_first_notebook_with_the_layout_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="nowhere is not a folder"):  # before any notebook starts
        reproduce.run("paper", out_dir=tmp_path / "out", progress=False, data_root=str(tmp_path / "nowhere"))
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        reproduce.run("paper", out_dir=tmp_path / "out", progress=False, data_root=str(tmp_path / "empty"))
    err = capsys.readouterr().err
    assert "FAILED: 00_data.ipynb" in err and "DatasetLayoutError" in err and "empty" in err
    assert not (tmp_path / "out" / "01_preprocessing.ipynb").exists()
