"""Tests of the decisions ``fit`` makes: intensity model, starts, known spectra."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _helpers import make_mixture

from hs_aeunmix import AEUnmix, _fitting, load_model, metrics
from hs_aeunmix._fitting import (
    MAX_TRAINING_PIXELS,
    MAX_VALIDATION_PIXELS,
    intensity_varies,
    n_validation,
    prepare,
)
from hs_aeunmix._training import STEPS_PER_EPOCH

QUICK = {"max_epochs": 8, "random_state": 0, "show_progressbar": False}
# The intensity and known-spectra decisions are judged from a vertex start:
# on these blocks an admissible ICA solution can be off the mark (see
# test_an_ica_answer_off_the_mark_is_not_taken_and_the_doubt_reported).
VERTEX = {**QUICK, "init": "vca"}


@pytest.fixture(scope="module")
def constant():
    return make_mixture(shape=(24, 24), counts=200, seed=4)


@pytest.fixture(scope="module")
def varying(constant):
    thickness = np.random.default_rng(1).uniform(0.5, 1.5, len(constant.spectra))
    return constant.spectra * thickness[:, None], thickness


def test_intensity_test_tells_constant_from_varying(constant, varying):
    spectra, _ = varying
    assert not intensity_varies(constant.spectra, constant.endmembers)
    assert intensity_varies(spectra, constant.endmembers)
    # The endmembers' own scale does not matter.
    rescaled = constant.endmembers * np.array([[0.3], [2.0], [5.0]])
    assert not intensity_varies(constant.spectra, rescaled)


def test_auto_intensity_follows_the_data(constant, varying, tmp_path):
    spectra, thickness = varying
    fixed = AEUnmix(3, **VERTEX).fit(constant.spectra)
    free = AEUnmix(3, **VERTEX).fit(spectra)
    assert not fixed.module_.has_pixel_scale
    assert free.module_.has_pixel_scale
    # What "auto" chose is recorded, and kept by a model file.
    assert (fixed.pixel_scale_, free.pixel_scale_) == (False, True)
    assert fixed.pixel_scale == free.pixel_scale == "auto"
    reloaded = load_model(free.save(tmp_path / "free"))
    assert reloaded.pixel_scale_ is True
    # With free intensities, factors times loadings follow the thickness.
    _, intensity = free.fractions(spectra)
    assert np.corrcoef(intensity, thickness)[0, 1] > 0.99


def test_forced_intensity_model(constant):
    model = AEUnmix(3, pixel_scale=True, **QUICK).fit(constant.spectra)
    assert model.module_.has_pixel_scale
    model = AEUnmix(3, pixel_scale=False, **QUICK).fit(constant.spectra)
    assert not model.module_.has_pixel_scale


def test_auto_trains_one_network_per_start_and_reports_them(constant):
    model = AEUnmix(3, **QUICK).fit(constant.spectra)
    report = model.stability_
    assert set(report.starts) <= {"ica", "spa", "vca"}
    assert len(report.starts) >= 2
    assert report.starts[report.chosen] == model.init_
    assert len(report.objectives) == len(report.starts)
    # Every endmember dominates many pixels of these blocks.
    assert (report.support > 50).all()
    single = AEUnmix(3, init="vca", **QUICK).fit(constant.spectra)
    assert single.stability_.starts == ("vca",)
    assert np.isnan(single.stability_.spread).all()


def test_an_ica_answer_off_the_mark_is_not_taken_and_the_doubt_reported():
    # Hundreds of nearly pure pixels, and an ICA solution whose maps show
    # none of them and that ends about 0.15 rad off (the rule before the
    # noise test and the minimum volume kept it). The default now keeps a
    # vertex start and still says that a start explaining the data nearly
    # as well disagrees.
    endmembers = make_mixture(shape=(24, 24), counts=200, seed=4).endmembers
    rng = np.random.default_rng(0)
    fractions = rng.dirichlet(np.full(3, 0.3), 576)
    spectra = rng.poisson(fractions @ endmembers).astype(float)
    with pytest.warns(UserWarning, match="not identified by the data"):
        model = AEUnmix(3, **QUICK).fit(spectra)
    report = model.stability_
    assert model.init_ != "ica"
    assert metrics.spectral_angles(model.components_, endmembers).max() < 0.05
    assert not report.identifiable
    assert np.nanmax(report.spread) > 0.1


@pytest.mark.parametrize(
    ("counts", "directions"),
    # Counts per channel of the mean spectrum: at 0.05 (five counts per
    # spectrum) the Poisson noise hides both directions three endmembers
    # need; at 200 both stand out.
    [(0.05, 0), (200, 2)],
)
def test_fit_counts_the_directions_above_the_noise_and_warns_when_too_few(
    counts, directions
):
    spectra = make_mixture(counts=counts).spectra
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = AEUnmix(3, init="vca", max_epochs=1, random_state=0).fit(spectra)
    report = model.stability_
    assert report.directions == directions
    below = [w for w in caught if "more than their noise explains" in str(w.message)]
    assert len(below) == (directions < 2)
    assert report.below_noise is (directions < 2)


def test_starts_within_the_directions_above_the_noise_find_closer_endmembers(
    monkeypatch,
):
    # Ten counts per spectrum: one of the two directions rises above the
    # noise. A vertex or independent-component start along the other is
    # noise that training keeps: without the projection the worst
    # endmember ends 0.9 rad off, with it within 0.45 rad.
    mixture = make_mixture(counts=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = AEUnmix(3, max_epochs=10, random_state=0).fit(mixture.spectra)
    assert model.stability_.directions == 1
    angles = metrics.spectral_angles(model.components_, mixture.endmembers)
    assert angles.max() < 0.45


def test_training_is_a_budget_of_steps(constant):
    model = AEUnmix(
        3,
        init="vca",
        max_epochs=3,
        patience=10,
        **{k: v for k, v in QUICK.items() if k != "max_epochs"},
    ).fit(constant.spectra)
    assert model.n_iter_ == 3
    assert STEPS_PER_EPOCH == 50


def _recorded(monkeypatch, name: str) -> list:
    """What each call of ``_fitting.<name>`` returns, in order (the calls run)."""
    results = []
    real = getattr(_fitting, name)

    def recording(*args):
        results.append(real(*args))
        return results[-1]

    monkeypatch.setattr(_fitting, name, recording)
    return results


def test_encoder_inputs_computed_once_train_exactly_as_per_batch(monkeypatch):
    # The input stage is computed once per fit instead of at every step:
    # the same numbers, so the same model to the last bit.
    mixture = make_mixture(shape=(24, 24), n_channels=1024, counts=200, seed=4)
    precomputed = _recorded(monkeypatch, "training_encoder_inputs")
    once = AEUnmix(3, **QUICK).fit(mixture.spectra)
    assert len(precomputed) == 1  # shared by the starts and the kept one
    n_train = 24 * 24 - n_validation(24 * 24, once.validation_fraction)
    assert precomputed[0].shape == (n_train, 32)  # input_components=32
    # Without them every batch computes its own.
    monkeypatch.setattr(_fitting, "precomputed_encoder_inputs", lambda *args: None)
    per_batch = AEUnmix(3, **QUICK).fit(mixture.spectra)
    np.testing.assert_array_equal(once.components_, per_batch.components_)
    np.testing.assert_array_equal(
        once.transform(mixture.spectra), per_batch.transform(mixture.spectra)
    )


@pytest.mark.parametrize("min_volume_weight", [0.0, 0.01])
def test_the_loss_floor_is_measured_only_for_the_minimum_volume_term(
    constant, monkeypatch, min_volume_weight
):
    floors = _recorded(monkeypatch, "loss_floor")
    AEUnmix(3, min_volume_weight=min_volume_weight, **{**VERTEX, "max_epochs": 1}).fit(
        constant.spectra
    )
    assert len(floors) == (1 if min_volume_weight else 0)


def test_large_scans_train_on_a_bounded_sample():
    rng = np.random.default_rng(0)
    X = rng.random((MAX_TRAINING_PIXELS + 1000, 5))
    prepared = prepare(X, rng, 0.1)
    assert len(prepared.train) + len(prepared.validation) == MAX_TRAINING_PIXELS
    assert len(prepared.validation) == MAX_VALIDATION_PIXELS
    assert prepared.train.dtype == np.float32
    assert n_validation(1000, 0.1) == 100
    assert n_validation(12, 0.5) == 6
    assert n_validation(3, 0.9) == 1


def test_fixed_endmembers_are_kept_and_the_others_learned(constant):
    known = constant.endmembers[1:2]
    model = AEUnmix(3, fixed_endmembers=known, **VERTEX).fit(constant.spectra)
    np.testing.assert_allclose(model.components_[0], known[0], rtol=1e-5)
    angles = metrics.spectral_angles(model.components_, constant.endmembers)
    assert angles.max() < 0.05


@pytest.mark.parametrize(
    ("fixed", "message"),
    [
        (np.ones((1, 99)), "known spectra must be"),
        (np.ones((4, 100)), "between 1 and n_components"),
        (-np.ones((1, 100)), "finite and non-negative"),
        (np.zeros((1, 100)), "all-zero spectrum"),
    ],
)
def test_bad_fixed_endmembers(constant, fixed, message):
    with pytest.raises(ValueError, match=message):
        AEUnmix(3, fixed_endmembers=fixed, **QUICK).fit(constant.spectra)


def test_disagreeing_priors_are_reported():
    # Blurred blocks with a few pure pixels each: the vertex starts find the
    # endmembers, the independent components do not (the abundances of
    # blocks exclude each other), and the data fit both. The default then
    # says it is unsure rather than answering silently. (On this scene
    # FastICA converges from every random start; on some others it does
    # not, and whether its answer is admissible changes with rounding.)
    mixture = make_mixture(shape=(32, 32), counts=100, seed=8)
    with pytest.warns(UserWarning, match="not identified by the data"):
        model = AEUnmix(3, random_state=0, show_progressbar=False).fit(mixture.spectra)
    report = model.stability_
    assert set(report.starts) == {"ica", "spa", "vca"}
    assert not report.identifiable
    assert np.nanmax(report.spread) > 0.1
    # The one-start models agree with each other: nothing to report there.
    vertex = AEUnmix(3, init="vca", random_state=0, show_progressbar=False)
    assert vertex.fit(mixture.spectra).stability_.identifiable


def test_rows_reordered_in_place_are_those_of_fancy_indexing():
    from hs_aeunmix._fitting import _reorder_rows

    rng = np.random.default_rng(3)
    array = rng.random((500, 4)).astype(np.float32)
    layout = np.arange(500)  # the first ten rows stay where they are
    layout[10:] = 10 + rng.permutation(490)
    expected = array[layout]
    _reorder_rows(array, layout)
    np.testing.assert_array_equal(array, expected)


def test_preparing_in_place_gives_the_copies_and_reuses_the_memory(monkeypatch):
    # Blocks of 50 rows: the copies are made on several threads at once.
    monkeypatch.setattr(_fitting, "BLOCK_ROWS", 50)
    spectra = make_mixture(shape=(24, 24), counts=100, seed=5).spectra.astype(
        np.float32
    )
    spectra[[3, 40]] = 0.0  # left out
    spectra[[7, 300], 50] += 20 * spectra.max()  # repaired
    copied = prepare(spectra, np.random.default_rng(0), 0.2)
    overwritten = spectra.copy()
    in_place = prepare(overwritten, np.random.default_rng(0), 0.2, in_place=True)
    assert in_place.screening.summary() == copied.screening.summary()
    assert in_place.screening.n_spikes == 2
    assert in_place.data_scale == copied.data_scale
    np.testing.assert_array_equal(in_place.train, copied.train)
    np.testing.assert_array_equal(in_place.validation, copied.validation)
    assert np.shares_memory(in_place.train, overwritten)
    assert np.shares_memory(in_place.validation, overwritten)
    # Only float32 spectra are training's dtype: others are copied.
    float64 = spectra.astype(np.float64)
    kept = prepare(float64, np.random.default_rng(0), 0.2, in_place=True)
    assert not np.shares_memory(kept.train, float64)
    assert kept.train.dtype == np.float32
    np.testing.assert_allclose(kept.train, copied.train, rtol=1e-6)


def test_ctrl_c_in_the_first_epoch_of_a_start_keeps_the_trained_start(monkeypatch):
    # Ctrl-C as the second start's first epoch runs: the first start (trained
    # for its candidate epochs) is kept, nothing more is trained, and the
    # model is complete (its report is finite, so it saves).
    from hs_aeunmix import _fitting, _training
    from hs_aeunmix._persistence import model_bytes

    real_epoch = _training._train_one_epoch
    epochs = []
    candidate_epochs = 2
    monkeypatch.setattr(_fitting, "CANDIDATE_EPOCHS", candidate_epochs)

    def interrupting(*args, **kwargs):
        epochs.append(None)
        if len(epochs) == candidate_epochs + 1:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(_training, "_train_one_epoch", interrupting)
    spectra = make_mixture(shape=(16, 16), counts=200, seed=1).spectra
    with pytest.warns(UserWarning, match="Training interrupted after 0 complete"):
        model = AEUnmix(3, init="auto", **{**QUICK, "max_epochs": 10}).fit(spectra)
    report = model.stability_
    assert len(report.starts) == 2
    assert model.init_ == report.starts[0]
    assert model.history_.n_epochs == candidate_epochs
    assert len(epochs) == candidate_epochs + 1
    assert np.isfinite(report.objectives).all()
    model_bytes(model.get_params(deep=False), model._fitted_state())


def test_data_scale_is_the_mean_spectrums_peak_over_blocks():
    from hs_aeunmix._fitting import data_scale

    rng = np.random.default_rng(2)
    spectra = rng.random((50, 6)) * np.arange(1, 7)
    expected = spectra.mean(axis=0).max()
    assert data_scale([spectra]) == pytest.approx(expected)
    assert data_scale([spectra[:7], spectra[7:30], spectra[30:]]) == pytest.approx(
        expected
    )
    # A zero mean spectrum falls back to the largest absolute value.
    signs = np.array([[1.0], [-1.0]])
    assert data_scale([signs * np.arange(3.0)]) == 2.0
    with pytest.raises(ValueError, match="The data are all zero"):
        data_scale([np.zeros((4, 3))])


@pytest.mark.parametrize("input_components", [None, 3])
def test_network_inputs_standardise_the_normalised_spectra(
    monkeypatch, input_components
):
    """Mean and spread of what the encoder reads, against numpy, in small blocks."""
    import hs_aeunmix._fitting as fitting

    rng = np.random.default_rng(3)
    spectra = rng.random((45, 8)) * rng.uniform(0.5, 3.0, (45, 1)) + 0.1
    monkeypatch.setattr(fitting, "BLOCK_ROWS", 7)  # several blocks of rows
    inputs = fitting.network_inputs(
        spectra, pixel_scale=True, input_components=input_components
    )
    totals = spectra.sum(axis=1)
    normalised = spectra * (totals.mean() / totals)[:, None]
    assert inputs["pixel_total"] == pytest.approx(totals.mean())
    np.testing.assert_allclose(
        inputs["input_mean"].numpy(), normalised.mean(axis=0), rtol=1e-5
    )
    centred = normalised - normalised.mean(axis=0)
    if input_components is not None:
        projection = inputs["input_projection"].numpy().astype(np.float64)
        # The leading principal axes of the centred inputs.
        _, _, axes = np.linalg.svd(centred, full_matrices=False)
        np.testing.assert_allclose(
            np.abs(axes[:input_components] @ projection), np.eye(3), atol=1e-4
        )
        centred = centred @ projection
    np.testing.assert_allclose(
        inputs["input_scale"].numpy(), centred.std(axis=0), rtol=1e-4
    )


def test_warm_start_keeps_the_first_fits_data_scale(constant):
    model = AEUnmix(3, **{**QUICK, "max_epochs": 2, "warm_start": True})
    model.fit(constant.spectra)
    scale = model.data_scale_
    model.fit(3.0 * constant.spectra)
    assert model.data_scale_ == scale


def test_given_endmembers_are_the_start(constant):
    model = AEUnmix(3, **{**QUICK, "max_epochs": 1, "init": constant.endmembers})
    model.fit(constant.spectra)
    assert model.init_ == "given"
    assert metrics.mean_spectral_angle(model.components_, constant.endmembers) < 0.05


def test_the_poisson_loss_fits_intensities_by_likelihood(constant):
    model = AEUnmix(3, **{**VERTEX, "loss": "poisson", "pixel_scale": True})
    model.fit(constant.spectra)
    assert model.module_.scale_rule == "poisson"
    model = AEUnmix(3, **{**VERTEX, "pixel_scale": True}).fit(constant.spectra)
    assert model.module_.scale_rule == "least_squares"


@pytest.mark.parametrize(
    ("options", "judged_in_training"),
    [
        ({"validation_fraction": 0.1}, True),
        ({"validation_fraction": 0.0}, False),
        # A prior the user put on the endmembers is not overruled by the fit.
        ({"validation_fraction": 0.1, "volume_weight": 1e-6}, False),
    ],
)
def test_the_kept_starts_epochs_are_judged_by_their_held_out_risk_once(
    constant, monkeypatch, options, judged_in_training
):
    judged = []

    class Risks(_fitting.HeldOutRisk):
        def __call__(self, endmembers):
            judged.append(endmembers.copy())
            return super().__call__(endmembers)

    monkeypatch.setattr(_fitting, "HeldOutRisk", Risks)
    model = AEUnmix(3, **options, **{**VERTEX, "max_epochs": 8}).fit(constant.spectra)
    assert len(model.history_.train_loss) == 8  # 6 for the start, 2 after it
    # The start's 6 epochs are not judged: its risks are those of the epoch
    # its loss keeps, which then competes with the 2 epochs trained after.
    assert len(judged) == (3 if judged_in_training else 1)
    if judged_in_training:
        kept = model.module_.decoder.endmembers.detach().numpy()
        assert any(np.array_equal(endmembers, kept) for endmembers in judged)


@pytest.mark.parametrize(("loss", "pair_used"), [("mse", True), ("sad", False)])
def test_training_a_background_model_computes_the_loss_on_the_residual_pair(
    monkeypatch, loss, pair_used
):
    from hs_aeunmix import _networks

    calls = []
    residual_pair = _networks.UnmixingAutoencoder.residual_pair

    def counted(self, *args):
        calls.append(1)
        return residual_pair(self, *args)

    monkeypatch.setattr(_networks.UnmixingAutoencoder, "residual_pair", counted)
    mixture = make_mixture(shape=(12, 12), n_channels=40)
    AEUnmix(
        n_components=3,
        baseline=2,
        loss=loss,
        init="vca",
        max_epochs=1,
        spatial=False,
        random_state=0,
        show_progressbar=False,
    ).fit(mixture.spectra + np.linspace(0.0, 1.0, 40))
    assert bool(calls) == pair_used
