"""Each manipulation changes pixels inside its mask and nowhere else, in canonical patch space."""
import numpy as np
import pytest
from dflite.config import METHODS
from dflite.data.synth.identity import Expression, Light, random_identity, render_face
from dflite.data.synth.manipulate import manipulate

SIZE = 96


@pytest.mark.parametrize("method", METHODS)
def test_changes_only_inside_the_mask(method):
    rng = np.random.default_rng(0)
    target, source = random_identity(rng), random_identity(rng)
    expr_t, expr_s = Expression(mouth_open=0.2), Expression(mouth_open=0.7, smile=0.5)
    light = Light()
    real, _ = render_face(target, expr_t, light, SIZE)
    fake, mask = manipulate(method, target, source, expr_t, expr_s, light, SIZE, rng, strength=0.5)
    assert fake.shape == real.shape and mask.shape == (SIZE, SIZE)
    assert 0 <= mask.min() and mask.max() <= 1
    diff = np.abs(fake - real).max(2)
    assert diff[mask == 0].max() < 1e-6, "pixels changed outside the mask"
    assert diff[mask > 0.5].mean() > 0.005, "the mask marks pixels that did not change"


def test_unknown_method_is_named():
    rng = np.random.default_rng(0)
    ident = random_identity(rng)
    with pytest.raises(ValueError, match="unknown manipulation method 'Morph'"):
        manipulate("Morph", ident, ident, Expression(), Expression(), Light(), SIZE, rng, 0.5)


def test_renders_are_cached_and_read_only():
    ident = random_identity(np.random.default_rng(1))
    a, _ = render_face(ident, Expression(), Light(), SIZE)
    b, _ = render_face(ident, Expression(), Light(), SIZE)
    assert a is b and not a.flags.writeable
