import pytest
from dflite import config
from dflite.config import SynthConfig


def test_profiles_exist_and_quick_is_default():
    assert set(config.PROFILES) == {"quick", "standard", "paper"}
    assert config.get_profile("quick").synth == SynthConfig()
    assert config.get_profile("standard").synth.identities >= 200  # "hundreds of identities"


def test_unknown_profile_and_field_are_named():
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        config.get_profile("fast")
    with pytest.raises(ValueError, match="unknown SynthConfig field.*framez"):
        config.override(SynthConfig(), framez=3)


def test_store_names_are_pinned():
    # Defaults hash to the empty dict; changing these names orphans every existing crop store.
    from dflite import paths
    from dflite.data.extract import store_dir

    base = paths.data_dir() / "crops" / "quick"
    assert store_dir("quick", "ffpp", config.ExtractConfig()) == base / "ffpp_44136fa3"
    assert store_dir("quick", "ffpp", config.override(config.ExtractConfig(), frames=16), synthetic=True) == \
        base / "synthetic_ffpp_d46b8548"


def test_hash_ignores_defaults_and_list_vs_tuple():
    a = config.override(SynthConfig(), compressions=["c23", "c40"])
    assert config.config_hash(a) == config.config_hash(SynthConfig())
    assert config.non_defaults(SynthConfig()) == {}
    assert config.non_defaults(config.override(SynthConfig(), frames=8)) == {"frames": 8}


def test_recipes_change_one_model_and_wrong_keys_or_types_fail_when_the_profile_is_made():
    quick = config.get_profile("quick")
    assert quick.recipe("mesoinception4") == config.override(quick.train, input_size=96, epochs=3)
    assert quick.recipe("cnn5") == config.override(quick.train, epochs=2, lr=4e-3, cpu_bf16=True)
    r18 = quick.recipe("resnet18")
    assert r18.batch_size == 16 and r18.epoch_size > 0 and r18.input_size == quick.train.input_size
    assert config.config_hash(r18) != config.config_hash(quick.train)
    with pytest.raises(ValueError, match="unknown TrainConfig field.*epochz"):
        config.Profile(recipes={"cnn5": {"epochz": 3}})
    with pytest.raises(ValueError, match="TrainConfig.epochs must be int, got '3'"):
        config.Profile(lottery=config.LotteryStudy(recipes={"cnn5": {"epochs": "3"}}))


def test_resolve_checks_the_notebook_parameters_and_keeps_the_rest():
    p = config.resolve("quick", dataset="ffpp", data_root="/data/ffpp", data_seed=2, workers=1)
    assert (p.name, p.dataset, p.data_root, p.data_seed, p.workers) == ("quick", "ffpp", "/data/ffpp", 2, 1)
    assert p.lottery == config.get_profile("quick").lottery and config.resolve(p) is p
    for bad, match in (({"data_seed": "abc"}, "data_seed must be int"), ({"workers": 1.5}, "workers must be int"),
                       ({"data_seed": True}, "must be int, got True"), ({"seeds": 3}, "unknown Profile field")):
        with pytest.raises(ValueError, match=match):
            config.resolve("quick", **bad)


def test_study_settings_are_not_run_settings():
    # Choosing models and seeds must not rename a run: they live in BaselineStudy, not TrainConfig.
    fields = {f.name for f in config.dataclasses.fields(config.TrainConfig)}
    assert not fields & {"models", "seeds", "ablation_model", "latency_repeats"}
    assert len(config.get_profile("quick").baselines.seeds) >= 3


def test_another_data_seed_runs_under_its_own_name_and_bad_parameters_are_refused():
    from dflite import paths

    assert config.resolve("quick").name == "quick"                      # the default run keeps its folders
    one = config.resolve("quick", data_seed=1)
    assert one.name == "quick-data1" and config.resolve(one).name == "quick-data1"
    assert paths.synth_dir(one.name) != paths.synth_dir("quick")        # seeds live side by side
    assert config.resolve("paper", dataset="ffpp", data_root="/x", data_seed=1).name == "paper"  # real data: no seed
    assert config.resolve(one, data_seed=0).name == "quick" and config.resolve(one, data_seed=2).name == "quick-data2"
    assert config.resolve(one, dataset="ffpp", data_root="/x").name == "quick"
    for bad, message in (({"data_seed": -1}, "data_seed must be 0 or more"), ({"workers": 0}, "workers must be 1"),
                         ({"data_seed": "abc"}, "data_seed must be int")):
        with pytest.raises(ValueError, match=message):
            config.resolve("quick", **bad)


def test_dflite_synth_writes_another_seed_beside_the_default(monkeypatch, tmp_path):
    from dflite import cli
    from dflite.data import synth

    made = []

    def fake_generate(out, profile, seed, **kw):
        made.append((out, profile, seed))
        raise synth.OutputFolderError("stop here")
    monkeypatch.setenv("DFLITE_DATA", str(tmp_path))
    monkeypatch.setattr(synth, "generate", fake_generate)
    cli.main(["synth", "--seed", "2"])
    cli.main(["synth"])
    assert [(o.name, p, s) for o, p, s in made] == [("quick-data2", "quick-data2", 2), ("quick", "quick", 0)]


def test_a_synthetic_roots_store_takes_the_name_its_set_was_made_for(tmp_path):
    import json

    from dflite.data.store import synthetic_profile

    (tmp_path / "set" / "ffpp").mkdir(parents=True)
    (tmp_path / "set" / "dflite_synth.json").write_text(json.dumps({"made_by": "dflite", "profile": "quick-data1"}))
    assert synthetic_profile(tmp_path / "set" / "ffpp") == "quick-data1"
    assert synthetic_profile(tmp_path) is None
