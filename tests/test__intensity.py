"""The intensity of a scan relative to the training scan (``_intensity``)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from _helpers import make_mixture
from scipy.optimize import brentq

from hs_aeunmix import AEUnmix, _intensity

ENDMEMBERS = np.array([[4.0, 1.0, 0.5, 0.5], [0.5, 0.5, 2.0, 9.0]])
TOTALS = ENDMEMBERS.sum(axis=1)


def _proportional_encoder(offset: float = 0.0):
    """Sum-to-one abundances by least squares on :data:`ENDMEMBERS`.

    With ``offset`` zero the abundances do not depend on the spectra's scale
    (the fixed point is the true intensity); a positive offset makes them
    depend on it, so the secant search has work to do.
    """
    unmix = np.linalg.pinv(ENDMEMBERS)

    def encode(spectra: np.ndarray) -> np.ndarray:
        raw = np.clip(spectra @ unmix, 0, None) + offset
        return raw / raw.sum(axis=1, keepdims=True)

    return encode


def _scan(intensity: float, first_share: float, n_pixels: int = 50) -> np.ndarray:
    rng = np.random.default_rng(0)
    first = np.clip(first_share + 0.05 * rng.standard_normal(n_pixels), 0, 1)
    fractions = np.column_stack([first, 1 - first])
    return intensity * fractions @ ENDMEMBERS


@pytest.mark.parametrize(
    ("n_rows", "expected"),
    [(1, [0]), (5, [0, 1, 2, 3, 4]), (2048, list(range(2048)))],
)
def test_sample_rows_keeps_every_row_of_a_small_scan(n_rows, expected):
    assert _intensity.sample_rows(n_rows).tolist() == expected


def test_sample_rows_spans_a_large_scan_evenly():
    rows = _intensity.sample_rows(100_000)
    assert rows.size == _intensity.RATIO_SAMPLE_SIZE
    assert (rows[0], rows[-1]) == (0, 99_999)
    assert np.ptp(np.diff(rows)) <= 1


def test_unconstrained_abundances_measure_the_mean_total():
    spectra = _scan(2.0, 0.3)
    trained_total = 7.0
    measured = _intensity.measure_intensity(
        spectra, _proportional_encoder(), TOTALS, trained_total, sum_to_one=False
    )
    assert measured == pytest.approx(spectra.sum(axis=1).mean() / trained_total)


@pytest.mark.parametrize("intensity", [0.25, 1.0, 3.7])
def test_sum_to_one_measures_the_intensity_not_the_proportions(intensity):
    """A scan richer in the brighter endmember is not mistaken for a brighter scan.

    The training scan held the two endmembers half and half; this one holds
    mostly the second (brighter) one. Its mean total is far from the
    training total times the intensity, and the fixed point corrects it.
    """
    trained_total = 0.5 * TOTALS.sum()
    spectra = _scan(intensity, 0.1)
    first_guess = spectra.sum(axis=1).mean() / trained_total
    assert abs(first_guess / intensity - 1) > 0.2
    measured = _intensity.measure_intensity(
        spectra, _proportional_encoder(), TOTALS, trained_total, sum_to_one=True
    )
    assert measured == pytest.approx(intensity, rel=1e-6)


def test_sum_to_one_reaches_the_fixed_point_of_a_scale_dependent_encoder():
    calls = []
    scale_dependent = _proportional_encoder(offset=0.3)

    def encode(spectra):
        calls.append(None)
        return scale_dependent(spectra)

    spectra = _scan(5.0, 0.2)
    totals = spectra.sum(axis=1)

    def mismatch(gain: float) -> float:
        return totals.sum() / (encode(spectra / gain) @ TOTALS).sum() - gain

    expected = brentq(mismatch, 0.5, 50.0, xtol=1e-12)
    measured = _intensity.measure_intensity(
        spectra, encode, TOTALS, 0.5 * TOTALS.sum(), sum_to_one=True
    )
    assert measured == pytest.approx(expected, rel=1e-4)
    # Not the first guess: the search moved.
    assert abs(measured - totals.mean() / (0.5 * TOTALS.sum())) > 0.1
    # Secant steps, not the linearly converging fixed-point iteration.
    calls.clear()
    _intensity.measure_intensity(
        spectra, encode, TOTALS, 0.5 * TOTALS.sum(), sum_to_one=True
    )
    assert len(calls) <= 6


@pytest.mark.parametrize("sum_to_one", [False, True])
def test_totals_below_one_are_measured(sum_to_one):
    """Scaled spectra and training totals are of order one, often below it."""
    spectra, trained_total = _scan(0.02, 0.5), 0.5
    assert spectra.sum(axis=1).mean() < 1
    measured = _intensity.measure_intensity(
        spectra, _proportional_encoder(), TOTALS, trained_total, sum_to_one=sum_to_one
    )
    # Without sum-to-one, the mean total over the training total; with it,
    # the fixed point, which is the scan's intensity.
    expected = spectra.sum(axis=1).mean() / trained_total if not sum_to_one else 0.02
    assert measured == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("spectra", "trained_total"),
    [(np.zeros((3, 4)), 5.0), (np.ones((3, 4)), 0.0), (-np.ones((3, 4)), 5.0)],
)
def test_no_positive_intensity_measures_one(spectra, trained_total):
    for sum_to_one in (False, True):
        measured = _intensity.measure_intensity(
            spectra,
            _proportional_encoder(),
            TOTALS,
            trained_total,
            sum_to_one=sum_to_one,
        )
        assert measured == 1.0


@pytest.mark.parametrize("ratio", [0.94, 1.06, 2.0])
def test_a_ratio_beyond_five_percent_warns(ratio):
    with pytest.warns(UserWarning, match="times as intense") as record:
        _intensity.report_intensity_ratio(ratio)
    assert str(record[0].message) == (
        f"This scan is {ratio:.4g} times as intense as the scan the model was "
        "trained on (beam current, dwell time or gain); it is unmixed divided by "
        "that factor and its endmembers are the model's times that factor."
    )


@pytest.mark.parametrize("ratio", [0.96, 1.0, 1.04])
def test_a_ratio_within_five_percent_is_logged(ratio, caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.INFO, logger=_intensity.__name__):
            _intensity.report_intensity_ratio(ratio)
    assert f"{ratio:.4g} times as intense" in caplog.text


@pytest.fixture(scope="module")
def mixture():
    return make_mixture(shape=(8, 8), n_channels=30, counts=300)


def _fitted(mixture, pixel_scale: bool) -> AEUnmix:
    model = AEUnmix(
        3,
        init="vca",
        hidden_layer_sizes=(8,),
        baseline=None,
        pixel_scale=pixel_scale,
        max_epochs=2,
        random_state=0,
        show_progressbar=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return model.fit(mixture.spectra, image_shape=(8, 8))


@pytest.fixture(scope="module")
def model(mixture):
    return _fitted(mixture, pixel_scale=False)


@pytest.fixture(scope="module")
def scaled_model(mixture):
    return _fitted(mixture, pixel_scale=True)


@pytest.mark.parametrize("fitted", ["model", "scaled_model"])
def test_the_training_scan_measures_one(fitted, mixture, request):
    model = request.getfixturevalue(fitted)
    assert model.intensity_ratio(mixture.spectra) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dose", [0.3, 2.5])
def test_a_scan_at_another_dose_measures_the_dose(model, mixture, dose):
    assert model.intensity_ratio(dose * mixture.spectra) == pytest.approx(
        dose, rel=1e-3
    )


@pytest.mark.parametrize("dose", [0.4, 2.0])
def test_a_per_pixel_intensity_measures_its_mean(scaled_model, mixture, dose):
    ratio = scaled_model.intensity_ratio(dose * mixture.spectra)
    assert ratio == pytest.approx(dose, rel=0.05)


def test_a_module_that_sees_no_intensity_measures_one(scaled_model):
    dark = np.zeros((4, scaled_model.n_features_in_), dtype=np.float32)
    measured = _intensity.measure(scaled_model.module_, dark, scaled_model.device_)
    assert measured == 1.0


def test_rescaled_copy_unmixes_the_scaled_scan_as_the_model_the_scan(model, mixture):
    copy = model._rescaled(3.0)
    assert copy is not model
    assert copy.data_scale_ == pytest.approx(3.0 * model.data_scale_)
    np.testing.assert_allclose(
        copy.transform(3.0 * mixture.spectra),
        model.transform(mixture.spectra),
        rtol=1e-4,
        atol=1e-6,
    )
    np.testing.assert_allclose(copy.components_, 3.0 * model.components_, rtol=1e-5)


@pytest.mark.parametrize("copy", [False, True])
def test_a_scan_at_the_training_dose_gets_the_model(model, mixture, copy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = model._for_scan(1.005 * mixture.spectra, copy=copy)
    assert (result is model) is not copy
    assert result.data_scale_ == model.data_scale_


def test_a_scan_at_another_dose_gets_a_rescaled_copy(model, mixture):
    scale = model.data_scale_
    with pytest.warns(UserWarning, match="times as intense"):
        result = model._for_scan(2.0 * mixture.spectra, copy=False)
    assert result is not model
    assert result.data_scale_ == pytest.approx(2.0 * scale, rel=1e-3)
    assert model.data_scale_ == scale


def test_per_pixel_intensities_absorb_the_dose(scaled_model, mixture):
    with pytest.warns(UserWarning, match="times as intense"):
        result = scaled_model._for_scan(2.0 * mixture.spectra, copy=False)
    assert result is scaled_model
