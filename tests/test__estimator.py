"""Tests of the scikit-learn estimator AEUnmix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import FAST, make_mixture
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_estimator

from hs_aeunmix import AEUnmix, _training
from hs_aeunmix.datasets import GroundTruth
from hs_aeunmix.metrics import (
    abundance_rmse,
    match_endmembers,
    spectral_angles,
    unmixing_scores,
)


@pytest.fixture(scope="module")
def counts_scene():
    """Three phases in blurred pure blocks, 100 counts per channel (Poisson)."""
    mixture = make_mixture(shape=(32, 32), counts=100, seed=7)
    truth = GroundTruth(
        endmembers=mixture.endmembers,
        abundances=mixture.abundances,
        names=("a", "b", "c"),
        noiseless=mixture.abundances @ mixture.endmembers,
    )
    return mixture.spectra, truth


# The network at its start: the same options, no training to speak of.
UNTRAINED = {"max_epochs": 1, "learning_rate": 1e-9, "endmember_learning_rate": 1e-9}


def _angle_and_rmse(model, spectra, truth):
    scores = unmixing_scores(model.components_, model.transform(spectra), truth)
    return scores["mean_sad_rad"], scores["abundance_rmse"]


@pytest.mark.parametrize(
    ("options", "bounds"),
    [
        # Vertex start: good endmembers from the start, the encoder learns
        # the abundances.
        ({"init": "vca"}, (0.05, 0.06)),
        ({"init": "vca", "loss": "poisson"}, (0.05, 0.06)),
        ({"init": "vca", "loss": "mse_sad"}, (0.05, 0.06)),
        ({"init": "vca", "loss": "sad"}, (0.05, 0.06)),
        ({"init": "vca", "abundance": "nonnegative"}, (0.05, 0.06)),
        ({"init": "vca", "pixel_scale": True}, (0.05, 0.07)),
        # From random pixels the endmembers must travel: the network's step.
        ({"init": "random", "endmember_learning_rate": 1e-3}, (0.08, 0.08)),
    ],
)
def test_training_does_the_work(counts_scene, options, bounds):
    spectra, truth = counts_scene
    max_angle, max_rmse = bounds
    common = {"random_state": 0, "show_progressbar": False}
    start = AEUnmix(3, **{**common, **options, **UNTRAINED}).fit(spectra)
    trained = AEUnmix(3, **common, **options).fit(spectra)
    start_angle, start_rmse = _angle_and_rmse(start, spectra, truth)
    angle, rmse = _angle_and_rmse(trained, spectra, truth)
    assert start_rmse > max_rmse
    assert rmse < max_rmse
    assert angle < max_angle
    if options["init"] == "random":
        assert start_angle > max_angle


def test_reconstruction_is_in_data_units(mixture):
    model = AEUnmix(3, init="vca", random_state=0, show_progressbar=False)
    model.fit(mixture.spectra)
    reconstruction = model.inverse_transform(model.transform(mixture.spectra))
    relative_error = np.linalg.norm(reconstruction - mixture.spectra) / np.linalg.norm(
        mixture.spectra
    )
    assert relative_error < 0.02
    assert model.components_.shape == (3, mixture.spectra.shape[1])
    assert (model.components_ >= 0).all()


def test_fractions_sum_to_one_and_intensity_carries_the_scale(mixture):
    model = AEUnmix(3, **FAST).fit(mixture.spectra)
    fractions, intensity = model.fractions(mixture.spectra)
    assert fractions.dtype == np.float64
    np.testing.assert_allclose(fractions.sum(axis=1), 1, atol=1e-5)
    assert (fractions >= 0).all()
    assert (intensity > 0).all()
    # transform gives fractions times intensity: factors times loadings.
    np.testing.assert_allclose(
        model.transform(mixture.spectra), fractions * intensity[:, None]
    )


def test_intensity_follows_each_pixels_scale(mixture):
    # The same mixture with every pixel scaled by its own factor (thickness):
    # the fractions stay, the intensities follow the factors.
    factors = np.random.default_rng(0).uniform(0.5, 1.5, len(mixture.spectra))
    model = AEUnmix(3, pixel_scale=True, **FAST).fit(mixture.spectra)
    plain, plain_intensity = model.fractions(mixture.spectra)
    scaled, scaled_intensity = model.fractions(mixture.spectra * factors[:, None])
    np.testing.assert_allclose(scaled, plain, atol=1e-4)
    np.testing.assert_allclose(scaled_intensity / plain_intensity, factors, rtol=1e-3)


def test_without_pixel_scale_abundances_sum_to_one(mixture):
    model = AEUnmix(3, pixel_scale=False, **FAST).fit(mixture.spectra)
    abundances = model.transform(mixture.spectra)
    np.testing.assert_allclose(abundances.sum(axis=1), 1, atol=1e-5)
    _, intensity = model.fractions(mixture.spectra)
    np.testing.assert_array_equal(intensity, 1.0)


def test_no_mean_attribute(mixture):
    # HyperSpy 2.5 adds an estimator's mean_ to the user's data.
    model = AEUnmix(3, **FAST).fit(mixture.spectra)
    assert not hasattr(model, "mean_")


def test_history_records_every_epoch(mixture):
    model = AEUnmix(3, max_epochs=7, patience=100, show_progressbar=False).fit(
        mixture.spectra
    )
    history = model.history_
    assert model.n_iter_ == history.n_epochs == 7
    assert len(history.train_loss) == len(history.validation_loss) == 7
    assert 0 <= history.best_epoch < 7
    assert history.validation_loss[history.best_epoch] == min(history.validation_loss)


def test_early_stopping_restores_best_weights(mixture, monkeypatch):
    # The loss's choice alone: where the held-out risk overrules it
    # (tests/test__risk.py, tests/test__training.py) the epoch kept is
    # another one, and training still stops 2 epochs after the loss's best.
    monkeypatch.setattr(_training, "epoch_to_keep", lambda losses, risks, kept: kept)
    model = AEUnmix(
        3, patience=2, max_epochs=500, random_state=0, show_progressbar=False
    )
    model.fit(mixture.spectra)
    history = model.history_
    assert history.stopped_early
    assert history.n_epochs == history.best_epoch + 1 + 2


def test_seeded_fit_is_reproducible(mixture):
    first = AEUnmix(3, dropout=0.1, **FAST).fit(mixture.spectra)
    second = AEUnmix(3, dropout=0.1, **FAST).fit(mixture.spectra)
    np.testing.assert_array_equal(first.components_, second.components_)
    np.testing.assert_array_equal(
        first.transform(mixture.spectra), second.transform(mixture.spectra)
    )
    other = AEUnmix(3, dropout=0.1, **{**FAST, "random_state": 1}).fit(mixture.spectra)
    assert not np.array_equal(first.components_, other.components_)


def test_global_torch_rng_untouched(mixture):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AEUnmix(3, **FAST).fit(mixture.spectra)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_input_not_modified(mixture):
    spectra = mixture.spectra.copy()
    AEUnmix(3, **FAST).fit_transform(spectra)
    np.testing.assert_array_equal(spectra, mixture.spectra)


def test_integer_counts_accepted():
    counts = make_mixture(counts=20).spectra.astype(np.int32)
    original = counts.copy()
    abundances = AEUnmix(3, **FAST).fit_transform(counts)
    assert abundances.shape == (counts.shape[0], 3)
    np.testing.assert_array_equal(counts, original)


def test_batch_of_one_pixel_left_over(mixture):
    # 1024 pixels, 10 % held out: 922 training pixels = 7 x 131 + 5; with 921
    # (batch 115 -> 8 x 115 + 1) a last batch of one would break batch norm.
    spectra = mixture.spectra[:1023]
    model = AEUnmix(3, batch_size=115, validation_fraction=0.1, **FAST)
    n_train = spectra.shape[0] - round(0.1 * spectra.shape[0])
    assert n_train % 115 == 1
    model.fit(spectra)
    assert np.isfinite(model.history_.train_loss).all()


@pytest.mark.filterwarnings("ignore:Endmembers .* dominate")
def test_initial_endmembers_from_array(mixture):
    options = {
        "init": mixture.endmembers,
        "max_epochs": 1,
        "endmember_learning_rate": 1e-9,
        "show_progressbar": False,
        "random_state": 0,
    }
    # Without a per-pixel intensity the given spectra are used as they are ...
    model = AEUnmix(3, pixel_scale=False, **options).fit(mixture.spectra)
    np.testing.assert_allclose(model.components_, mixture.endmembers, rtol=1e-4)
    assert model.init_ == "given"
    # ... with one, their scale is carried by the intensities: same shapes.
    scaled = AEUnmix(3, **options).fit(mixture.spectra)
    assert np.max(spectral_angles(scaled.components_, mixture.endmembers)) < 1e-4
    assert scaled.init_ == "given"


def test_transform_on_unseen_data(mixture):
    model = AEUnmix(3, init="vca", random_state=0, show_progressbar=False)
    model.fit(mixture.spectra)
    unseen = make_mixture(seed=5)
    fresh = make_mixture(seed=5)
    np.testing.assert_array_equal(unseen.endmembers, mixture.endmembers)
    abundances = model.transform(unseen.spectra)
    order = match_endmembers(model.components_, fresh.endmembers)
    truth = fresh.abundances.reshape(-1, 3)
    assert abundance_rmse(abundances, truth, order=order, scale="none") < 0.05


# ------------------------------------------------------------- bad input
def test_nan_values_are_counted(mixture):
    spectra = mixture.spectra.copy()
    spectra[3, 5] = np.nan
    spectra[7, :2] = np.inf
    with pytest.raises(
        ValueError, match=r"1 NaN and 2 inf values in 2 of 1024 spectra"
    ):
        AEUnmix(3, **FAST).fit(spectra)


def test_negative_values_warn(mixture):
    spectra = mixture.spectra - 60
    with pytest.warns(UserWarning, match=r"negative values .* non-negative"):
        AEUnmix(3, **FAST).fit(spectra)


def test_negative_values_refused_by_poisson_loss(mixture):
    with pytest.raises(ValueError, match="loss='poisson' needs counts"):
        AEUnmix(3, loss="poisson", **FAST).fit(mixture.spectra - 60)


def test_complex_data_refused(mixture):
    with pytest.raises(ValueError, match="Complex data not supported"):
        AEUnmix(3, **FAST).fit(mixture.spectra.astype(complex))


@pytest.mark.parametrize(
    ("n_components", "message"),
    [
        (None, "n_components .* must be given"),
        (0, r"'n_components' parameter of AEUnmix must be an int in the "),
        (101, r"n_components=101 must be between 1 and .* \(100\)"),
        (2.5, r"'n_components' parameter of AEUnmix must be an int"),
    ],
)
def test_bad_n_components(mixture, n_components, message):
    # One error type for a bad option value, a ValueError and a TypeError.
    with pytest.raises(InvalidParameterError, match=message):
        AEUnmix(n_components, **FAST).fit(mixture.spectra)


def test_too_few_pixels(mixture):
    with pytest.raises(ValueError, match=r"at least 10 spectra .* n_samples = 9"):
        AEUnmix(3, **FAST).fit(mixture.spectra[:9])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"encoder": "transformer"}, r"'encoder' parameter .* among \{"),
        ({"loss": "l1"}, r"'loss' parameter of AEUnmix must be a str among"),
        ({"abundance": "free"}, r"'abundance' parameter .* Got 'free' instead"),
        ({"max_epochs": 0}, r"'max_epochs' .* an int in the range \[1, inf\)"),
        ({"max_epochs": True}, r"'max_epochs' .* an int in the range \[1, inf\)"),
        ({"dropout": 1.0}, r"'dropout' .* a float in the range \[0.0, 1.0\)"),
        ({"learning_rate": -1.0}, r"'learning_rate' .* range \(0.0, inf\)"),
        ({"hidden_layer_sizes": (64, 0)}, "'hidden_layer_sizes' .* positive integers"),
        ({"hidden_layer_sizes": 64}, "'hidden_layer_sizes' .* an array-like"),
        ({"kernel_sizes": (), "encoder": "conv"}, "'kernel_sizes' .* non-empty"),
        ({"device": "tpu"}, "device='tpu' is not a device torch knows"),
        ({"init": np.ones((2, 100))}, r"init has shape \(2, 100\)"),
        ({"activation": "tanh"}, r"'activation' parameter .* Got 'tanh'"),
        ({"volume_weight": -1.0}, r"'volume_weight' .* range \[0.0, inf\)"),
        ({"endmember_l21_weight": np.inf}, r"'endmember_l21_weight' .* Got inf"),
        ({"input_noise": True}, "'input_noise' parameter .* Got True"),
        ({"gaussian_dropout": 1.0}, r"'gaussian_dropout' .* range \[0.0, 1.0\)"),
        ({"batch_norm": "yes"}, "'batch_norm' parameter .* 'bool'"),
        ({"endmember_learning_rate": 0}, r"'endmember_learning_rate' .* \(0.0, inf"),
        ({"init": "pca"}, r"'init' parameter .* Got 'pca' instead"),
        ({"random_state": "seed"}, "'random_state' parameter"),
    ],
)
def test_bad_hyperparameters(mixture, option, message):
    with pytest.raises(ValueError, match=message):
        AEUnmix(3, **{**FAST, **option}).fit(mixture.spectra)


def test_transform_checks_channel_count(mixture):
    model = AEUnmix(3, **FAST).fit(mixture.spectra)
    with pytest.raises(
        ValueError, match="X has 99 features, but AEUnmix is expecting 100"
    ):
        model.transform(mixture.spectra[:, :99])


@pytest.mark.filterwarnings("ignore:The data contain .* negative values")
def test_scikit_learn_compatibility():
    # Every check passes but one; AEUnmix needs n_components, given on the
    # instance.
    check_estimator(
        AEUnmix(n_components=2, max_epochs=3, show_progressbar=False, random_state=0),
        expected_failed_checks={
            # It fits zero-mean Gaussian noise, which a non-negative mixing
            # model reproduces worse than zeros: fit refuses that model
            # (test_a_model_worse_than_zeros_is_refused_and_nothing_is_kept).
            "check_n_features_in_after_fitting": "refuses a model worse than zeros",
        },
    )


def test_over_specified_endmembers_are_driven_to_zero(caplog):
    # Well separated spectra: the l2,1 penalty removes what the data do not
    # need. (On EELS, whose endmembers share their background, the same
    # strength merges real endmembers: use scan_components there.)
    noisy = make_mixture(counts=200, seed=0)
    # The endmembers must be free to shrink (the network's step size) and
    # have time to (200 epochs), from VCA's vertices (ICA with six components
    # of three-endmember data splits endmembers instead).
    model = AEUnmix(
        6,
        endmember_l21_weight=0.02,
        pixel_scale=False,
        init="vca",
        endmember_learning_rate=1e-3,
        batch_size=128,
        max_epochs=200,
        patience=20,
        random_state=0,
        show_progressbar=False,
    )
    with caplog.at_level("WARNING"):
        model.fit(noisy.spectra)
    assert model.active_components_.sum() == 3
    assert "were driven to zero: the data need 3 of the 6" in caplog.text
    kept = model.components_[model.active_components_]
    assert np.max(spectral_angles(kept, noisy.endmembers)) < 0.1


def test_all_components_active_without_penalty(mixture):
    model = AEUnmix(3, **FAST).fit(mixture.spectra)
    np.testing.assert_array_equal(model.active_components_, [True, True, True])


def test_volume_weight_pushes_endmembers_apart(mixture):
    from hs_aeunmix._losses import volume_penalty

    def inverse_volume(model):
        scaled = torch.from_numpy(model.components_ / model.data_scale_)
        return float(volume_penalty(scaled))

    options = {
        "max_epochs": 30,
        "endmember_learning_rate": 1e-3,
        "random_state": 0,
        "show_progressbar": False,
    }
    plain = AEUnmix(3, **options).fit(mixture.spectra)
    pushed = AEUnmix(3, volume_weight=1e-2, **options).fit(mixture.spectra)
    assert inverse_volume(pushed) < 0.9 * inverse_volume(plain)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    import torch

    from hs_aeunmix._device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == torch.device(expected)


def test_unavailable_mps_refused(monkeypatch):
    import torch

    from hs_aeunmix._device import resolve_device

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no Apple GPU"):
        resolve_device("mps")


def test_a_model_worse_than_zeros_is_refused_and_nothing_is_kept(mixture, monkeypatch):
    # The non-negative model with per-pixel intensities cannot do worse than
    # zeros on real data; the check guards the others (and future models).
    from hs_aeunmix import _estimator

    monkeypatch.setattr(_estimator, "_relative_norm", lambda misfit, spectra: 1.2)
    estimator = AEUnmix(3, max_epochs=1, init="vca", random_state=0)
    with pytest.raises(ValueError, match="worse than a model of zeros"):
        estimator.fit(mixture.spectra)
    assert not hasattr(estimator, "module_")
    assert not hasattr(estimator, "components_")
