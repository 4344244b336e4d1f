"""Tests of model files: exact round trips and clear errors for bad files."""

from __future__ import annotations

import json
import struct

import hyperspy.api as hs
import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import FAST, make_mixture

import hs_aeunmix
from hs_aeunmix import AEUnmix, ModelFileError, load_model
from hs_aeunmix import _persistence as persistence


@pytest.fixture(scope="module")
def small_mixture():
    return make_mixture(shape=(16, 16))


@pytest.fixture(scope="module")
def fitted(small_mixture):
    return AEUnmix(3, **FAST).fit(small_mixture.spectra)


@pytest.fixture
def model_file(fitted, tmp_path):
    return fitted.save(tmp_path / "series.aeunmix")


def test_round_trip_is_exact(fitted, model_file, small_mixture):
    loaded = load_model(model_file)
    assert loaded is not fitted
    np.testing.assert_array_equal(
        loaded.transform(small_mixture.spectra), fitted.transform(small_mixture.spectra)
    )
    np.testing.assert_array_equal(loaded.components_, fitted.components_)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.data_scale_ == fitted.data_scale_
    assert loaded.n_features_in_ == fitted.n_features_in_
    assert loaded.n_iter_ == fitted.n_iter_
    assert loaded.history_.as_dict() == fitted.history_.as_dict()
    assert loaded.signal_calibration_ is None


def test_save_adds_the_suffix_and_keeps_others(fitted, tmp_path):
    assert fitted.save(tmp_path / "model").name == "model.aeunmix"
    assert fitted.save(tmp_path / "model.st").name == "model.st"


def test_header_describes_the_model(model_file, fitted):
    with open(model_file, "rb") as stream:
        (length,) = struct.unpack("<Q", stream.read(8))
        metadata = json.loads(stream.read(length))["__metadata__"]
    header = json.loads(metadata["hs_aeunmix"])
    assert header["format"] == "hs_aeunmix.model"
    assert header["format_version"] == persistence.FORMAT_VERSION
    assert header["package_version"] == hs_aeunmix.__version__
    assert header["hyperparameters"]["n_components"] == 3
    assert header["hyperparameters"]["hidden_layer_sizes"] == [128, 64]
    assert header["data_scale"] == fitted.data_scale_
    assert header["training"]["n_epochs"] == fitted.n_iter_
    assert header["training"]["train_loss"] == fitted.history_.train_loss
    assert "saved" in header["training"]
    assert len(metadata["sha256"]) == 64


def test_array_init_is_saved_as_a_tensor(small_mixture, tmp_path):
    init = small_mixture.endmembers * 1.1
    model = AEUnmix(3, init=init, **FAST).fit(small_mixture.spectra)
    loaded = load_model(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.init, init)


def test_signal_calibration_round_trip(spectrum_image, tmp_path):
    model = spectrum_image.decomposition(
        algorithm="ae", output_dimension=3, return_info=True, print_info=False, **FAST
    )
    loaded = load_model(model.save(tmp_path / "m"))
    calibration = loaded.signal_calibration_
    np.testing.assert_allclose(calibration.values, 280.0 + 0.5 * np.arange(100))
    assert (calibration.units, calibration.name) == ("eV", "Energy")
    assert calibration.trained_channels.all()


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not fitted yet"):
        AEUnmix(3).save(tmp_path / "m")


def test_load_model_passes_a_model_through(fitted):
    assert load_model(fitted) is fitted


def test_model_travels_in_hspy_results(spectrum_image, tmp_path):
    model = spectrum_image.decomposition(
        algorithm="ae", output_dimension=3, return_info=True, print_info=False, **FAST
    )
    path = tmp_path / "scan_ae.hspy"
    spectrum_image.save(path)
    spectra = spectrum_image.data.reshape(-1, 100)
    from_file = load_model(path)
    from_signal = load_model(hs.load(path))
    for loaded in (from_file, from_signal):
        np.testing.assert_array_equal(
            loaded.transform(spectra), model.transform(spectra)
        )
        assert loaded.signal_calibration_.units == "eV"


def test_signal_without_ae_results(spectrum_image, tmp_path):
    spectrum_image.decomposition(algorithm="SVD", print_info=False)
    with pytest.raises(ModelFileError, match="algorithm='SVD'"):
        load_model(spectrum_image)
    path = tmp_path / "svd.hspy"
    spectrum_image.save(path)
    with pytest.raises(ModelFileError, match=r"svd\.hspy holds no autoencoder model"):
        load_model(path)


def test_stale_model_after_another_decomposition(spectrum_image):
    spectrum_image.decomposition(
        algorithm="ae", output_dimension=3, print_info=False, **FAST
    )
    spectrum_image.decomposition(algorithm="NMF", output_dimension=3, print_info=False)
    with pytest.raises(ModelFileError, match="algorithm='NMF'"):
        load_model(spectrum_image)


# ------------------------------------------------------------- bad files
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No model file at .*absent"):
        load_model(tmp_path / "absent.aeunmix")


def test_truncated_file(model_file):
    data = model_file.read_bytes()
    model_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ModelFileError, match=r"series\.aeunmix is truncated or corrupted"
    ):
        load_model(model_file)


def test_header_cut_short(model_file):
    model_file.write_bytes(model_file.read_bytes()[:100])
    with pytest.raises(ModelFileError, match=r"series\.aeunmix is not an hs_aeunmix"):
        load_model(model_file)


def test_flipped_bit_in_the_weights(model_file):
    data = bytearray(model_file.read_bytes())
    data[-5] ^= 0x01
    model_file.write_bytes(bytes(data))
    with pytest.raises(
        ModelFileError, match=r"series\.aeunmix is corrupted or was mod"
    ):
        load_model(model_file)


def test_tampered_header(model_file):
    data = model_file.read_bytes()
    # Same length, so the file stays a well-formed safetensors file.
    tampered = data.replace(b'\\"max_epochs\\": 5', b'\\"max_epochs\\": 6')
    assert tampered != data
    model_file.write_bytes(tampered)
    with pytest.raises(ModelFileError, match="checksum does not match"):
        load_model(model_file)


def test_newer_format(fitted, tmp_path, monkeypatch):
    monkeypatch.setattr(persistence, "FORMAT_VERSION", persistence.FORMAT_VERSION + 1)
    path = fitted.save(tmp_path / "future")
    monkeypatch.undo()
    with pytest.raises(
        ModelFileError, match=r"future\.aeunmix uses model format version 2.*Upgrade"
    ):
        load_model(path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.aeunmix"
    path.write_text("endmembers: Co, Ni, Pt\n")
    with pytest.raises(ModelFileError, match=r"notes\.aeunmix is not an hs_aeunmix"):
        load_model(path)


def test_tiny_file(tmp_path):
    path = tmp_path / "tiny.aeunmix"
    path.write_bytes(b"abc")
    with pytest.raises(ModelFileError, match="only 3 bytes long"):
        load_model(path)


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(3)}, path)
    with pytest.raises(ModelFileError, match="safetensors file but not an hs_aeunmix"):
        load_model(path)


def test_inconsistent_description_with_valid_checksum(fitted, tmp_path, monkeypatch):
    real = persistence._json_value

    def wrong_layer_sizes(name, value):
        # A layout that cannot hold the saved weights.
        return [7] if name == "hidden_layer_sizes" else real(name, value)

    monkeypatch.setattr(persistence, "_json_value", wrong_layer_sizes)
    path = fitted.save(tmp_path / "odd")
    monkeypatch.undo()
    with pytest.raises(ModelFileError, match="inconsistent model description"):
        load_model(path)


def test_loading_never_unpickles(model_file, monkeypatch):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert load_model(model_file).n_components == 3


def test_model_applies_after_reload_through_hyperspy(spectrum_image, tmp_path):
    spectrum_image.decomposition(
        algorithm="ae", output_dimension=3, print_info=False, **FAST
    )
    trained_loadings = spectrum_image.learning_results.loadings.copy()
    path = tmp_path / "week1.hspy"
    spectrum_image.save(path)
    reloaded = hs.load(path)
    reloaded.decomposition(algorithm="ae", model=hs.load(path), print_info=False)
    np.testing.assert_array_equal(reloaded.learning_results.loadings, trained_loadings)
