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


def test_run_names_are_pinned():
    # Defaults hash to the empty dict; changing these names breaks every existing run folder.
    assert config.run_name("train", "meso4", "ffpp", SynthConfig()) == "train_meso4_ffpp_44136fa3"
    assert config.run_name("train", "meso4", "ffpp", config.override(SynthConfig(), frames=8)) == \
        "train_meso4_ffpp_a205c2c5"


def test_hash_ignores_defaults_and_list_vs_tuple():
    a = config.override(SynthConfig(), compressions=["c23", "c40"])
    assert config.config_hash(a) == config.config_hash(SynthConfig())
    assert config.non_defaults(SynthConfig()) == {}
    assert config.non_defaults(config.override(SynthConfig(), frames=8)) == {"frames": 8}
