"""Tests of the presets: the methods of the seed papers as AEUnmix options."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import make_mixture, to_signal

from hs_aeunmix import AEUnmix, metrics
from hs_aeunmix.presets import PRESETS, preset_options


@pytest.fixture(scope="module")
def small_mixture():
    return make_mixture(shape=(24, 24))


# The smallest angle between two true endmembers of the mixture is 0.63 rad.
# Each bound is under a quarter of it, so every recovered endmember is
# unambiguously the one it is matched to. The VCA start is exact on this
# clean mixture and the published architectures, not tuned here, drift from
# it as they train on (udas reaches 0.42 rad after its 116 epochs of 50
# steps), so two epochs (100 steps) keep the test short and measure that a
# preset builds, trains and stays on the right endmembers (measured: pnas2024
# 0.098, volume 0.035, daeu 0.055, udas 0.049 rad).
@pytest.mark.parametrize(
    ("name", "overrides", "bound"),
    [
        ("pnas2024", {"max_epochs": 2}, 0.15),
        ("volume", {"max_epochs": 2}, 0.1),
        ("daeu", {"max_epochs": 2}, 0.1),
        ("udas", {"max_epochs": 2}, 0.1),
    ],
)
def test_preset_recovers_endmembers(small_mixture, name, overrides, bound):
    model = AEUnmix.from_preset(
        name, 3, random_state=0, show_progressbar=False, **overrides
    )
    model.fit(small_mixture.spectra)
    angles = metrics.spectral_angles(model.components_, small_mixture.endmembers)
    assert angles.max() < bound


def test_presets_are_options_of_the_one_estimator():
    model = AEUnmix.from_preset("daeu", 4, max_epochs=7)
    assert type(model) is AEUnmix
    params = model.get_params()
    assert params["hidden_layer_sizes"] == (36, 24, 12)
    assert params["abundance"] == "thresholded_sum_to_one"
    assert params["loss"] == "sad"
    assert params["max_epochs"] == 7  # an override wins over the preset
    assert params["negative_slope"] == 0.1


def test_every_preset_is_valid_for_the_estimator(small_mixture):
    for name in PRESETS:
        options = preset_options(name, 3)
        assert set(options) <= set(AEUnmix._get_param_names())
        estimator = AEUnmix(3, **options)
        estimator._validate_params()
        estimator._check_dependent_options(3, 100)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pnas2024", {"kernel_sizes": (5, 10, 15, 20), "n_filters": 32}),
        ("volume", {"kernel_sizes": (3, 5), "volume_weight": 1e-7}),
        ("udas", {"hidden_layer_sizes": (), "init": "vca"}),
    ],
)
def test_preset_follows_its_paper(name, expected):
    options = preset_options(name, 3)
    for key, value in expected.items():
        assert options[key] == value


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset='dae' is not one of pnas2024"):
        AEUnmix.from_preset("dae", 3)


def test_preset_needs_a_number_of_endmembers():
    with pytest.raises(TypeError, match="needs n_components"):
        preset_options("daeu", None)


def test_preset_through_hyperspy(small_mixture):
    signal = to_signal(small_mixture)
    model = signal.decomposition(
        algorithm="ae",
        preset="daeu",
        output_dimension=3,
        max_epochs=2,
        return_info=True,
        print_info=False,
        show_progressbar=False,
    )
    assert model.abundance == "thresholded_sum_to_one"
    assert model.max_epochs == 2
    assert signal.learning_results.factors.shape == (100, 3)
    assert np.isfinite(signal.learning_results.loadings).all()


def test_preset_with_a_saved_model_refused(small_mixture):
    signal = to_signal(small_mixture)
    model = AEUnmix(3, max_epochs=2, show_progressbar=False).fit(small_mixture.spectra)
    with pytest.raises(TypeError, match="preset= configures a new model"):
        signal.decomposition(algorithm="ae", model=model, preset="daeu")
