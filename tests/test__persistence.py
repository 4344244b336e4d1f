"""Tests of model files: exact round trips and clear errors for bad files."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import struct
import sys
import time

import hyperspy.api as hs
import numpy as np
import pytest
import safetensors.torch
import torch
from _helpers import (
    FAST,
    last_line_of_python,
    make_mixture,
    to_signal,
    train_through_hyperspy,
)

import hs_aeunmix
from hs_aeunmix import AEUnmix, ModelFileError, load_model
from hs_aeunmix import _persistence as persistence
from hs_aeunmix._initialisation import STARTS
from hs_aeunmix._state import FittedState


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
    assert loaded.get_params() == fitted.get_params()
    _assert_the_trained_model(loaded, fitted)
    assert loaded.signal_calibration_ is None


# ------------------------------------------- a loaded model is the trained one
def _fitted_attributes(model: AEUnmix) -> list[str]:
    """Every fitted attribute of ``model`` (scikit-learn's trailing ``_``).

    Read from the model, not listed by hand: an attribute added to ``fit``
    is compared without anyone remembering to add it here.
    """
    properties = {
        name
        for name, _ in inspect.getmembers(type(model), inspect.isdatadescriptor)
        if isinstance(getattr(type(model), name, None), property)
    }
    return sorted(
        name
        for name in {*vars(model), *properties}
        if name.endswith("_") and not name.startswith("_")
    )


def _assert_identical(original, loaded, where: str) -> None:
    """``loaded`` equals ``original`` exactly, recursing into what they hold."""
    assert type(loaded) is type(original), where
    if isinstance(original, torch.nn.Module):
        assert repr(loaded) == repr(original), where
        _assert_identical(original.state_dict(), loaded.state_dict(), where)
    elif isinstance(original, torch.Tensor):
        assert loaded.dtype == original.dtype, where
        assert torch.equal(loaded.cpu(), original.cpu()), where
    elif isinstance(original, np.ndarray):
        assert loaded.dtype == original.dtype, where
        np.testing.assert_array_equal(loaded, original, err_msg=where)
    elif dataclasses.is_dataclass(original):
        for part in dataclasses.fields(original):
            _assert_identical(
                getattr(original, part.name),
                getattr(loaded, part.name),
                f"{where}.{part.name}",
            )
    elif isinstance(original, dict):
        assert loaded.keys() == original.keys(), where
        for key, value in original.items():
            _assert_identical(value, loaded[key], f"{where}[{key!r}]")
    elif isinstance(original, (list, tuple)):
        assert len(loaded) == len(original), where
        for index, (one, other) in enumerate(zip(original, loaded, strict=True)):
            _assert_identical(one, other, f"{where}[{index}]")
    elif isinstance(original, float) and math.isnan(original):
        assert math.isnan(loaded), where
    else:
        assert loaded == original, where


def _assert_the_trained_model(loaded: AEUnmix, original: AEUnmix) -> None:
    """Every fitted attribute and every part of the fitted state survived."""
    names = _fitted_attributes(original)
    assert {"components_", "module_", "intensity_reference_"} <= set(names)
    assert _fitted_attributes(loaded) == names
    for name in names:
        _assert_identical(getattr(original, name), getattr(loaded, name), name)
    # The state a file holds, field by field: a field added to FittedState
    # is compared too.
    state = original._fitted_state()
    assert isinstance(state, FittedState)
    _assert_identical(state, loaded._fitted_state(), "state")


@pytest.fixture(scope="module")
def scan_model():
    """A model trained through HyperSpy on a scan with a dead pixel and a spike.

    Without a per-pixel intensity, so that a later scan's dose is divided out
    with the intensity measured on this scan (``intensity_reference_``).
    """
    signal = to_signal(make_mixture(shape=(16, 16), counts=200, seed=1))
    signal.data[0, 3] = 0.0
    signal.data[5, 7, 30] += 50 * signal.data.max()
    return train_through_hyperspy(signal, 3, **{**FAST, "pixel_scale": False})


def test_a_loaded_model_is_the_trained_model(scan_model, tmp_path):
    loaded = load_model(scan_model.save(tmp_path / "scan.aeunmix"))
    # What the comparison covers is not trivially empty.
    assert scan_model.screening_ == {
        "dead_pixels": 1,
        "spike_values": 1,
        "spike_pixels": 1,
    }
    assert scan_model.signal_calibration_.units == "eV"
    assert scan_model.training_residual_ > 0
    _assert_the_trained_model(loaded, scan_model)


def test_a_loaded_model_unmixes_a_scan_at_another_dose_as_the_trained_one(
    scan_model, tmp_path
):
    loaded = load_model(scan_model.save(tmp_path / "scan.aeunmix"))
    # The same sample, three times the counts.
    later = to_signal(make_mixture(shape=(16, 16), counts=600, seed=2))
    spectra = later.data.reshape(-1, later.data.shape[-1])
    ratio = scan_model.intensity_ratio(spectra)
    assert 2.7 < ratio < 3.3
    assert loaded.intensity_ratio(spectra) == ratio
    results = []
    for model in (scan_model, loaded):
        scan = later.deepcopy()
        with pytest.warns(UserWarning, match=r"times as intense"):
            scan.decomposition(algorithm="ae", model=model, print_info=False)
        results.append(scan.learning_results)
    trained, reloaded = results
    np.testing.assert_array_equal(reloaded.loadings, trained.loadings)
    np.testing.assert_array_equal(reloaded.factors, trained.factors)
    # The dose is divided out: the factors are the model's, times the ratio.
    np.testing.assert_allclose(
        trained.factors.T, ratio * scan_model.components_, rtol=1e-5
    )


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
    model = AEUnmix(3, **{**FAST, "init": init}).fit(small_mixture.spectra)
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
    tampered = data.replace(b'\\"max_epochs\\": 2', b'\\"max_epochs\\": 3')
    assert tampered != data
    model_file.write_bytes(tampered)
    with pytest.raises(ModelFileError, match="checksum does not match"):
        load_model(model_file)


def test_newer_format(fitted, tmp_path, monkeypatch):
    newer = persistence.FORMAT_VERSION + 1
    monkeypatch.setattr(persistence, "FORMAT_VERSION", newer)
    path = fitted.save(tmp_path / "future")
    monkeypatch.undo()
    with pytest.raises(
        ModelFileError, match=rf"future\.aeunmix uses model format version {newer}.*Up"
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


def test_loading_leaves_torchs_random_state_alone(model_file):
    before = torch.random.get_rng_state()
    load_model(model_file)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_loading_is_light(model_file):
    # Random initial weights drawn on the "meta" device import torch._dynamo:
    # about 80 MiB and a second at every load of a model for a new scan.
    probe = (
        "import sys; from hs_aeunmix import load_model; "
        f"load_model({str(model_file)!r}); "
        "print('torch._dynamo' in sys.modules)"
    )
    assert last_line_of_python(probe) == "False"


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


# ----------------------------------------------------- crafted model files
# Files built on purpose: a valid model whose header or tensors are edited
# and whose checksum is recomputed with the package's own digest, so that
# the checksum does not hide what the loader must catch by itself.
HEADER_KEY, DIGEST_KEY = "hs_aeunmix", "sha256"


def _parts(data: bytes) -> tuple[str, dict[str, torch.Tensor]]:
    """The model header's JSON text and the tensors of a model file's bytes."""
    (length,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8 : 8 + length])["__metadata__"]
    return metadata[HEADER_KEY], safetensors.torch.load(data)


def _layout(tensors: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Type and shape of each tensor, as the safetensors header lists them."""
    data = safetensors.torch.save(tensors)
    (length,) = struct.unpack("<Q", data[:8])
    outer = json.loads(data[8 : 8 + length])
    outer.pop("__metadata__", None)
    return {
        name: {"dtype": entry["dtype"], "shape": entry["shape"]}
        for name, entry in outer.items()
    }


def _with_layout(text: str, tensors: dict[str, torch.Tensor]) -> str:
    """Header text whose record of the tensors (if it has one) lists ``tensors``."""
    header = json.loads(text)
    if "tensors" not in header:
        return text
    header["tensors"] = _layout(tensors)
    return json.dumps(header)


def _craft(source, destination, *, edit_header=None, edit_tensors=None, edit_text=None):
    """Write ``destination``: ``source`` edited, with a matching checksum.

    ``edit_header(header)`` and ``edit_tensors(tensors)`` change the parsed
    header and the tensors in place; ``edit_text(text)`` returns new header
    text (for JSON that ``json.dumps`` cannot produce). The header's record
    of the tensors' types and shapes follows edited tensors, as a crafted
    file's would.
    """
    text, tensors = _parts(source.read_bytes())
    if edit_header is not None:
        header = json.loads(text)
        edit_header(header)
        text = json.dumps(header)
    if edit_tensors is not None:
        edit_tensors(tensors)
        text = _with_layout(text, tensors)
    if edit_text is not None:
        text = edit_text(text)
    metadata = {HEADER_KEY: text, DIGEST_KEY: persistence._digest(text, tensors)}
    destination.write_bytes(safetensors.torch.save(tensors, metadata=metadata))
    return destination


def _setter(*keys, value):
    def edit(header):
        for key in keys[:-1]:
            header = header[key]
        header[keys[-1]] = value

    return edit


def _refused(path, match=None) -> str:
    """Loading ``path`` raises a ModelFileError naming it; returns the message."""
    with pytest.raises(ModelFileError, match=match) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message
    return message


@pytest.fixture(scope="module")
def calibrated_file(tmp_path_factory, small_mixture):
    """A model trained through HyperSpy: its header has an axis calibration."""
    from _helpers import to_signal, train_through_hyperspy

    model = train_through_hyperspy(to_signal(small_mixture), **FAST)
    return model.save(tmp_path_factory.mktemp("calibrated") / "calibrated.aeunmix")


def test_crafting_keeps_a_valid_file(calibrated_file, tmp_path, small_mixture):
    # The crafting machinery itself produces loadable files.
    copy = _craft(calibrated_file, tmp_path / "copy.aeunmix", edit_header=lambda h: h)
    np.testing.assert_array_equal(
        load_model(copy).transform(small_mixture.spectra),
        load_model(calibrated_file).transform(small_mixture.spectra),
    )


@pytest.mark.parametrize("depth", [20, 100_000])
def test_deeply_nested_header(calibrated_file, tmp_path, depth):
    # Under a key of its own, which nothing else in the header refuses: 20
    # levels parse but exceed the depth bound; 100000 exceed Python's
    # recursion limit (RecursionError before the fix).
    nested = "[" * depth + "]" * depth
    path = _craft(
        calibrated_file,
        tmp_path / "nested.aeunmix",
        edit_text=lambda text: text.replace("{", f'{{"notes": {nested}, ', 1),
    )
    _refused(path, match="nested deeper" if depth == 20 else "not valid JSON")


def test_deeply_nested_safetensors_header(tmp_path):
    depth = 100_000
    outer = b'{"__metadata__": {}, "x": ' + b"[" * depth + b"]" * depth + b"}"
    path = tmp_path / "nested.aeunmix"
    path.write_bytes(struct.pack("<Q", len(outer)) + outer)
    _refused(path)


def test_hyperparameters_as_a_list(calibrated_file, tmp_path):
    path = _craft(
        calibrated_file,
        tmp_path / "list.aeunmix",
        edit_header=_setter("hyperparameters", value=[3, "dense"]),
    )
    _refused(path, match="hyperparameters")


def test_a_file_written_before_directions_were_measured_loads(model_file, tmp_path):
    def without_directions(header):
        del header["stability"]["directions"]

    path = _craft(
        model_file, tmp_path / "older.aeunmix", edit_header=without_directions
    )
    assert load_model(model_file).stability_.directions is not None
    assert load_model(path).stability_.directions is None


def test_a_spatial_layer_saved_before_its_passes_were_kept_makes_one(
    calibrated_file, tmp_path, small_mixture
):
    def without_passes(tensors):
        del tensors["module.spatial.passes"]

    path = _craft(
        calibrated_file, tmp_path / "older.aeunmix", edit_tensors=without_passes
    )
    current, older = load_model(calibrated_file), load_model(path)
    assert int(current.module_.spatial.passes) == 3
    assert int(older.module_.spatial.passes) == 1
    spectra = small_mixture.spectra
    three = current.transform(spectra, image_shape=(16, 16))
    np.testing.assert_array_equal(older.transform(spectra), current.transform(spectra))
    current.module_.spatial.passes.fill_(1)
    one = current.transform(spectra, image_shape=(16, 16))
    np.testing.assert_array_equal(older.transform(spectra, image_shape=(16, 16)), one)
    assert not np.allclose(one, three)


@pytest.mark.parametrize("value", [-1, 1.5, "two"])
def test_directions_must_be_a_count(model_file, tmp_path, value):
    path = _craft(
        model_file,
        tmp_path / "directions.aeunmix",
        edit_header=_setter("stability", "directions", value=value),
    )
    _refused(path, match="directions")


@pytest.mark.parametrize("index", [100, 10**6, -1])
def test_trained_channels_out_of_range(calibrated_file, tmp_path, index):
    path = _craft(
        calibrated_file,
        tmp_path / "channels.aeunmix",
        edit_header=_setter(
            "signal_calibration", "trained_channels", value=[*range(99), index]
        ),
    )
    _refused(path)


def _peak_memory_growth_mb(action) -> float:
    """Peak memory traced by tracemalloc (numpy's arrays included) during ``action``."""
    import tracemalloc

    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 2**20


def test_huge_declared_calibration_is_refused_without_allocating(
    calibrated_file, tmp_path
):
    # 200 million channels would be a 1.6 GB axis built from a 12 KB file.
    path = _craft(
        calibrated_file,
        tmp_path / "huge_axis.aeunmix",
        edit_header=_setter("signal_calibration", "size", value=200_000_000),
    )
    assert path.stat().st_size < 100_000

    def load():
        with pytest.raises(ModelFileError):
            load_model(path)

    start = time.perf_counter()
    growth = _peak_memory_growth_mb(load)
    assert time.perf_counter() - start < 5
    assert growth < 50
    _refused(path)


_MEMORY_PROBE = """
import json, resource, sys, time
from hs_aeunmix import ModelFileError, load_model

results = {}
for path in sys.argv[1:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        load_model(path)
        outcome = "loaded"
    except ModelFileError as error:
        outcome = "ModelFileError: " + str(error)
    except BaseException as error:
        outcome = type(error).__name__ + ": " + str(error)
    seconds = time.perf_counter() - start
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # ru_maxrss is in kB on Linux, in bytes on macOS.
    megabytes = growth / (2**20 if sys.platform == "darwin" else 2**10)
    results[path] = [outcome, seconds, megabytes]
print(json.dumps(results))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX only")
def test_huge_layers_are_refused_without_allocating(calibrated_file, tmp_path):
    # Described layers of 20000 x 20000 weights (1.6 GB) must be refused
    # from the header and the tensors, never built. Torch's allocations are
    # invisible to tracemalloc: the peak resident memory of a fresh process
    # is measured instead.
    def conv(size):
        def edit(header):
            header["hyperparameters"].update(encoder="conv", n_filters=size)

        return edit

    crafted = {
        "layers": _setter("hyperparameters", "hidden_layer_sizes", value=[20000] * 2),
        # Thousands of layers would each be built before the weights are read.
        "many layers": _setter(
            "hyperparameters", "hidden_layer_sizes", value=[8] * 8000
        ),
        "filters": conv(100_000),
        "axis": _setter("signal_calibration", "size", value=200_000_000),
    }
    paths = [
        str(_craft(calibrated_file, tmp_path / f"{name}.aeunmix", edit_header=edit))
        for name, edit in crafted.items()
    ]
    outcomes = json.loads(last_line_of_python(_MEMORY_PROBE, *paths))
    for path, (outcome, seconds, megabytes) in outcomes.items():
        assert outcome.startswith("ModelFileError: ")
        assert path in outcome
        assert seconds < 5
        assert megabytes < 50, f"{path}: {megabytes:.0f} MB"


def test_nan_weights(calibrated_file, tmp_path):
    def poison(tensors):
        tensors["module.encoder.latent.weight"][0, 0] = float("nan")

    path = _craft(calibrated_file, tmp_path / "nan.aeunmix", edit_tensors=poison)
    _refused(path, match="NaN")


def test_negative_endmembers(calibrated_file, tmp_path):
    def negative(tensors):
        tensors["module.decoder.weight"][5, 1] = -0.5

    path = _craft(calibrated_file, tmp_path / "neg.aeunmix", edit_tensors=negative)
    _refused(path, match="negative endmember")


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("input_scale", "float64"),
        ("encoder.latent.weight", "float16"),
        ("encoder.hidden.0.1.running_mean", "int32"),
    ],
)
def test_tensors_of_another_dtype(calibrated_file, tmp_path, name, dtype):
    # The network is float32: a file of other types must be refused, not
    # loaded into a model whose every transform raises a RuntimeError.
    def convert(tensors):
        tensors[f"module.{name}"] = tensors[f"module.{name}"].to(getattr(torch, dtype))

    path = _craft(calibrated_file, tmp_path / "dtype.aeunmix", edit_tensors=convert)
    _refused(path)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("input_scale", 0.0),  # division by zero when encoding
        ("input_scale", -1.0),
        ("encoder.hidden.0.1.running_var", -1.0),  # sqrt of a negative variance
    ],
)
def test_normalisation_no_training_gives(calibrated_file, tmp_path, name, value):
    # Training keeps input scales and batch-norm variances positive; a file
    # with others encodes every spectrum as NaN.
    def poison(tensors):
        tensors[f"module.{name}"][:] = value

    path = _craft(calibrated_file, tmp_path / "scale.aeunmix", edit_tensors=poison)
    _refused(path)


_HUGE_INT = 10**400  # valid JSON that no float holds


@pytest.mark.parametrize(
    "value",
    [float("nan"), 0.0, -2.5, float("inf"), _HUGE_INT],
    ids=["nan", "zero", "negative", "inf", "int-1e400"],
)
def test_data_scale_no_training_gives(calibrated_file, tmp_path, value):
    path = _craft(
        calibrated_file,
        tmp_path / "scale.aeunmix",
        edit_header=_setter("data_scale", value=value),
    )
    _refused(path)


@pytest.mark.parametrize(
    "keys",
    [
        ("fitted", "intensity_reference"),
        ("fitted", "intensity_spread"),
        ("signal_calibration", "offset"),
        ("signal_calibration", "scale"),
    ],
    ids="/".join,
)
@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), _HUGE_INT], ids=["nan", "inf", "int-1e400"]
)
def test_header_numbers_must_be_finite(calibrated_file, tmp_path, keys, value):
    # NaN and Infinity are JSON extensions that Python writes and reads.
    path = _craft(
        calibrated_file,
        tmp_path / "number.aeunmix",
        edit_header=_setter(*keys, value=value),
    )
    _refused(path)


def test_axis_of_zero_width(calibrated_file, tmp_path):
    path = _craft(
        calibrated_file,
        tmp_path / "flat_axis.aeunmix",
        edit_header=_setter("signal_calibration", "scale", value=0.0),
    )
    _refused(path, match="the axis calibration has a scale of zero")


@pytest.mark.parametrize("where", ["model header", "safetensors header"])
def test_integer_of_thousands_of_digits(calibrated_file, tmp_path, where):
    # Python refuses to parse integers of more than 4300 digits (ValueError).
    number = "9" * 5000
    path = tmp_path / "long_int.aeunmix"
    if where == "model header":
        _craft(
            calibrated_file,
            path,
            edit_text=lambda text: text.replace(
                '"hyperparameters": {', f'"hyperparameters": {{"n": {number}, ', 1
            ),
        )
    else:
        outer = f'{{"x": {number}, "__metadata__": {{}}}}'.encode()
        path.write_bytes(struct.pack("<Q", len(outer)) + outer)
    _refused(path)


def test_oversized_safetensors_header_length(model_file):
    data = model_file.read_bytes()
    model_file.write_bytes(struct.pack("<Q", 2**62) + data[8:])
    _refused(model_file, match="cut short or oversized")


def test_header_longer_than_the_bound(model_file, monkeypatch):
    # A header within the file but beyond MAX_HEADER_BYTES is not parsed.
    monkeypatch.setattr(persistence, "MAX_HEADER_BYTES", 64)
    _refused(model_file, match="cut short or oversized")


def test_long_list_with_one_string_is_refused_quickly(calibrated_file, tmp_path):
    # One string among integers made jsonschema's uniqueItems compare every
    # pair: 8000 entries took 18 s, a 1 MB header hours.
    channels = [*range(20_000), "x"]
    path = _craft(
        calibrated_file,
        tmp_path / "long_list.aeunmix",
        edit_header=_setter("signal_calibration", "trained_channels", value=channels),
    )
    start = time.perf_counter()
    message = _refused(path, match="trained_channels")
    assert time.perf_counter() - start < 0.5
    assert "'x'" in message


@pytest.mark.parametrize(
    "channels",
    [[0, 0, *range(2, 100)], [*range(99), 98.0]],
    ids=["twice", "float"],
)
def test_trained_channels_must_be_distinct_integers(
    calibrated_file, tmp_path, channels
):
    path = _craft(
        calibrated_file,
        tmp_path / "channels.aeunmix",
        edit_header=_setter("signal_calibration", "trained_channels", value=channels),
    )
    _refused(path, match="trained_channels|channel")


def test_header_records_the_tensor_layout(calibrated_file):
    text, tensors = _parts(calibrated_file.read_bytes())
    assert json.loads(text)["tensors"] == _layout(tensors)


def test_files_without_a_tensor_record_still_load(
    calibrated_file, tmp_path, small_mixture
):
    # Files written before the header recorded the tensors' types and shapes.
    old = _craft(
        calibrated_file,
        tmp_path / "old.aeunmix",
        edit_header=lambda header: header.pop("tensors", None),
    )
    assert "tensors" not in json.loads(_parts(old.read_bytes())[0])
    np.testing.assert_array_equal(
        load_model(old).transform(small_mixture.spectra),
        load_model(calibrated_file).transform(small_mixture.spectra),
    )


def _with_outer_shape(data: bytes, name: str, shape: list[int]) -> bytes:
    """``data`` with one tensor's shape changed in the safetensors header only."""
    (length,) = struct.unpack("<Q", data[:8])
    outer = json.loads(data[8 : 8 + length])
    outer[name]["shape"] = shape
    # Offsets count from the end of the header: its length may change and
    # the tensors' bytes stay valid.
    text = json.dumps(outer, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data[8 + length :]


@pytest.mark.parametrize("record", [True, False], ids=["recorded", "older-file"])
def test_tensor_shape_changed_in_the_safetensors_header(
    calibrated_file, tmp_path, record
):
    # The same bytes read as a 1-D projection: the checksum of the bytes
    # still matches (an IndexError escaped from building the network).
    source = calibrated_file
    if not record:
        source = _craft(
            calibrated_file,
            tmp_path / "older.aeunmix",
            edit_header=lambda header: header.pop("tensors", None),
        )
    path = tmp_path / "reshaped.aeunmix"
    path.write_bytes(
        _with_outer_shape(source.read_bytes(), "module.input_projection", [3200])
    )
    _refused(path, match="modified" if record else "inconsistent")


@pytest.mark.parametrize(
    "edit",
    [
        lambda tensors: tensors.update(
            {"module.input_projection": tensors["module.input_projection"].flatten()}
        ),
        lambda tensors: tensors.update({"module.baseline_basis": torch.tensor(1.0)}),
    ],
    ids=["flat-projection", "scalar-background"],
)
def test_tensors_of_another_rank(calibrated_file, tmp_path, edit):
    # Crafted with a matching checksum and record: the loader's own checks
    # must refuse tensors whose rank the network's layout is read from.
    path = _craft(calibrated_file, tmp_path / "rank.aeunmix", edit_tensors=edit)
    _refused(path, match="inconsistent")


_UNREADABLE_DTYPES = [
    name
    for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2")
    if hasattr(torch, name)
]


@pytest.mark.parametrize("dtype", _UNREADABLE_DTYPES)
@pytest.mark.parametrize("name", ["module.decoder.weight", "hyperparameters.x"])
def test_tensor_types_no_model_holds(calibrated_file, tmp_path, dtype, name):
    # Types numpy has no equivalent for raised a TypeError from deep inside
    # (the checksum is computed on numpy arrays). They are refused from the
    # safetensors header, before the checksum: any digest will do here.
    text, tensors = _parts(calibrated_file.read_bytes())
    tensors[name] = torch.ones(3, 4).to(getattr(torch, dtype))
    path = tmp_path / "dtype.aeunmix"
    metadata = {HEADER_KEY: text, DIGEST_KEY: "0" * 64}
    path.write_bytes(safetensors.torch.save(tensors, metadata=metadata))
    _refused(path, match=r"type (BF16|F8_E4M3|F8_E5M2)")


@pytest.mark.parametrize(
    ("keys", "value"),
    [
        (("data_scale",), 1e-300),
        (("data_scale",), 1e300),
        (("fitted", "intensity_reference"), 1e-300),
        (("fitted", "intensity_reference"), 1e300),
        (("signal_calibration", "offset"), -1e300),
        (("signal_calibration", "scale"), 1e300),
    ],
    ids=lambda item: "/".join(item) if isinstance(item, tuple) else f"{item:g}",
)
def test_header_scales_beyond_what_training_gives(
    calibrated_file, tmp_path, keys, value
):
    # Finite, but inference turns them into NaN (spectra divided by 1e-300,
    # channel positions beyond float64's range).
    path = _craft(
        calibrated_file,
        tmp_path / "scale.aeunmix",
        edit_header=_setter(*keys, value=value),
    )
    _refused(path, match="/".join(keys))


@pytest.mark.parametrize("value", [1e-30, 1e30])
def test_header_scales_at_the_documented_bounds_load(calibrated_file, tmp_path, value):
    path = _craft(
        calibrated_file,
        tmp_path / "scale.aeunmix",
        edit_header=_setter("data_scale", value=value),
    )
    assert load_model(path).data_scale_ == value


# ------------------------------------------------------ crafted results files
def _results_file(path, **dataset):
    """A HyperSpy results file (.hspy or .zspy) whose model is ``dataset``."""
    where = "Experiments/scan/learning_results"
    if path.suffix == ".zspy":
        import zarr

        results = zarr.open_group(str(path), mode="w").create_group(where)
        results.attrs["decomposition_algorithm"] = "ae"
        results.create_dataset("aeunmix_model", **dataset)
        return path
    import h5py

    with h5py.File(path, "w") as root:
        results = root.create_group(where)
        results.attrs["decomposition_algorithm"] = "ae"
        results.create_dataset("aeunmix_model", **dataset)
    return path


@pytest.mark.parametrize("suffix", [".hspy", ".zspy"])
def test_huge_model_in_a_results_file_is_refused_without_reading(tmp_path, suffix):
    # A 512 MiB byte array, compressed (here: never written, read as zeros)
    # in a file of a few kB, was read whole (1 GB) before any check.
    declared = 512 * 2**20
    path = _results_file(
        tmp_path / f"bomb{suffix}", shape=(declared,), dtype="uint8", chunks=2**20
    )
    on_disk = sum(file.stat().st_size for file in [path, *path.rglob("*")])
    assert on_disk < 100_000

    def load():
        with pytest.raises(ModelFileError):
            load_model(path)

    start = time.perf_counter()
    growth = _peak_memory_growth_mb(load)
    assert growth < 50, f"{growth:.0f} MB"
    assert time.perf_counter() - start < 2
    _refused(path, match="declares a model of 536870912 bytes")


@pytest.mark.parametrize("suffix", [".hspy", ".zspy"])
@pytest.mark.parametrize("kind", ["text", "bytes", "floats"])
def test_results_file_with_a_model_of_another_type(tmp_path, suffix, kind):
    if kind == "text":
        if suffix == ".hspy":
            import h5py

            dataset = {"data": ["abc", "de"], "dtype": h5py.string_dtype()}
        else:
            dataset = {"data": np.array(["abc", "de"]), "dtype": str}
    elif kind == "bytes":
        dataset = {"data": np.array([b"abc", b"de"])}
    else:
        dataset = {"data": np.zeros((3, 4))}
    path = _results_file(tmp_path / f"odd{suffix}", **dataset)
    _refused(path, match="not the bytes of a model")


# ------------------------------------------------------------ save and load
def test_save_to_an_existing_folder(fitted, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"is a folder; give the model file"):
        fitted.save(folder)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["models"]
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("name", ["x.hspy", "x.zspy", "X.HSPY"])
def test_save_refuses_a_results_file_name(fitted, tmp_path, name):
    with pytest.raises(ValueError, match="suffix of a HyperSpy results file"):
        fitted.save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", [123, 4.5, None, ["model"]])
def test_load_model_of_a_wrong_type(source):
    with pytest.raises(TypeError, match=r"A model is given as an AEUnmix, a model"):
        load_model(source)


def test_load_model_from_the_bytes_of_a_file(fitted, model_file, small_mixture):
    data = model_file.read_bytes()
    loaded = load_model(data)
    np.testing.assert_array_equal(
        loaded.transform(small_mixture.spectra), fitted.transform(small_mixture.spectra)
    )
    with pytest.raises(ModelFileError, match="the model bytes"):
        load_model(data[: len(data) // 2])


def test_load_model_from_results_reads_only_the_model(
    spectrum_image, tmp_path, monkeypatch
):
    model = spectrum_image.decomposition(
        algorithm="ae", output_dimension=3, return_info=True, print_info=False, **FAST
    )
    path = tmp_path / "scan_ae.hspy"
    spectrum_image.save(path)

    def refuse(*args, **kwargs):
        raise AssertionError("the whole results file was loaded")

    import hyperspy.io

    monkeypatch.setattr(hs, "load", refuse)
    monkeypatch.setattr(hyperspy.io, "load", refuse)
    loaded = load_model(path)
    spectra = spectrum_image.data.reshape(-1, 100)
    np.testing.assert_array_equal(loaded.transform(spectra), model.transform(spectra))


def test_interrupted_training_is_saved_and_says_so(
    small_mixture, tmp_path, monkeypatch, ctrl_c_at_the_second_epoch
):
    with pytest.warns(UserWarning, match="interrupted after 1 complete epochs"):
        model = AEUnmix(3, **{**FAST, "max_epochs": 50}).fit(small_mixture.spectra)
    monkeypatch.undo()
    loaded = load_model(model.save(tmp_path / "interrupted"))
    assert loaded.history_.interrupted
    assert loaded.n_iter_ == 1
    assert loaded.history_.as_dict() == model.history_.as_dict()
    np.testing.assert_array_equal(
        loaded.transform(small_mixture.spectra), model.transform(small_mixture.spectra)
    )


# -------------------------------------------------------------------- fuzz
_FUZZ_CASES = 300


def _nested(depth: int):
    value = 0
    for _ in range(depth):
        value = [value]
    return value


_REPLACEMENTS = (
    None,
    True,
    0,
    -1,
    2**31,
    _HUGE_INT,
    0.5,
    -1e-3,
    float("nan"),
    float("inf"),
    -float("inf"),
    "",
    "x" * 100_000,
    [],
    [1, 2],
    [0] * 100_000,
    {},
    {"tensor": "module.decoder.weight"},
    _nested(50),
)


def _json_paths(value, prefix=()):
    """Every (path, value) below ``value``, lists of numbers counted once."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, (*prefix, key))
    elif isinstance(value, list) and value:
        yield from _json_paths(value[0], (*prefix, 0))


def _mutate_header(rng, text: str) -> tuple[str, str]:
    header = json.loads(text)
    # The record of the tensors is compared whole; mutating its every entry
    # would only crowd out the fields checked one by one.
    paths = [
        path
        for path, _ in _json_paths(header)
        if path and (path[0] != "tensors" or len(path) == 1)
    ]
    path = paths[rng.integers(len(paths))]
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    roll = rng.random()
    if roll < 0.1 and isinstance(parent, dict):
        del parent[path[-1]]
        return json.dumps(header), f"header {'/'.join(map(str, path))} removed"
    if roll < 0.15:
        parent = header
        path = ("unknown",)
    replacement = _REPLACEMENTS[rng.integers(len(_REPLACEMENTS))]
    parent[path[-1]] = replacement
    shown = repr(replacement)[:40]
    return json.dumps(header), f"header {'/'.join(map(str, path))} = {shown}"


def _mutate_tensors(rng, tensors: dict[str, torch.Tensor]) -> str:
    names = sorted(tensors)
    name = names[rng.integers(len(names))]
    tensor = tensors[name]
    roll = rng.integers(6)
    if roll == 0:
        del tensors[name]
        return f"tensor {name} removed"
    if roll == 1:
        dtype = [torch.float64, torch.float16, torch.int32, torch.bool][rng.integers(4)]
        tensors[name] = tensor.to(dtype)
        return f"tensor {name} as {dtype}"
    if roll == 2:
        tensors[name] = tensor.reshape(-1)[: max(tensor.numel() - 1, 0)].clone()
        return f"tensor {name} one element short"
    if roll == 3:
        tensors[f"{name}.extra"] = tensor.clone()
        return f"tensor {name} duplicated"
    if tensor.numel() == 0 or not tensor.is_floating_point():
        tensors[name] = torch.zeros(3)
        return f"tensor {name} replaced"
    value = [float("nan"), float("inf"), -1.0, 0.0, 1e30][rng.integers(5)]
    flat = tensor.reshape(-1)
    flat[rng.integers(flat.numel())] = value
    return f"tensor {name} element = {value}"


def _mutation(rng, data: bytes) -> tuple[bytes, str]:
    kind = rng.integers(4)
    if kind == 0:
        mutated = bytearray(data)
        positions = rng.integers(len(data), size=rng.integers(1, 9))
        for position in positions:
            mutated[position] ^= 1 << int(rng.integers(8))
        return bytes(mutated), f"bits flipped at {sorted(positions.tolist())}"
    if kind == 1:
        length = int(rng.integers(len(data)))
        return data[:length], f"truncated to {length} bytes"
    text, tensors = _parts(data)
    if kind == 2:
        text, what = _mutate_header(rng, text)
    else:
        what = _mutate_tensors(rng, tensors)
        # As a crafted file would: the record of the tensors follows them,
        # so that the checks behind it are exercised.
        text = _with_layout(text, tensors)
    metadata = {HEADER_KEY: text, DIGEST_KEY: persistence._digest(text, tensors)}
    return safetensors.torch.save(tensors, metadata=metadata), what


def _check_usable(model, spectra) -> None:
    """A model that loads must work: finite abundances, scale and intensity."""
    assert np.isfinite(model.data_scale_)
    assert model.data_scale_ > 0
    assert np.isfinite(model.components_).all()
    assert (model.components_ >= 0).all()
    abundances = model.transform(spectra)
    assert abundances.shape == (spectra.shape[0], model.components_.shape[0])
    assert np.isfinite(abundances).all()
    ratio = model.intensity_ratio(spectra)
    assert np.isfinite(ratio)
    assert ratio > 0
    if model.signal_calibration_ is not None:
        assert np.isfinite(model.signal_calibration_.values).all()


def test_fuzzed_model_files_fail_cleanly_or_load_correctly(
    calibrated_file, tmp_path, small_mixture
):
    data = calibrated_file.read_bytes()
    spectra = small_mixture.spectra
    peak_before = _peak_resident_mb()
    rng = np.random.default_rng(20240613)
    path = tmp_path / "fuzzed.aeunmix"
    failures, outcomes = [], {"refused": 0, "loaded": 0}
    slowest = 0.0
    start = time.perf_counter()
    for case in range(_FUZZ_CASES):
        mutated, what = _mutation(rng, data)
        path.write_bytes(mutated)
        case_start = time.perf_counter()
        try:
            model = load_model(path)
        except ModelFileError as error:
            outcomes["refused"] += 1
            if str(path) not in str(error):
                failures.append(f"#{case} {what}: message does not name the file")
        except Exception as error:
            failures.append(f"#{case} {what}: {type(error).__name__}: {error}"[:300])
        else:
            outcomes["loaded"] += 1
            try:
                _check_usable(model, spectra)
            except Exception as error:
                failures.append(f"#{case} {what}: loaded, unusable ({error!r})"[:300])
        slowest = max(slowest, time.perf_counter() - case_start)
    elapsed = time.perf_counter() - start
    assert not failures, f"{len(failures)} of {_FUZZ_CASES} mutations:\n" + "\n".join(
        failures[:20]
    )
    assert outcomes["refused"] > _FUZZ_CASES / 2
    assert slowest < 2
    assert elapsed < 30
    assert _peak_resident_mb() - peak_before < 200


def _peak_resident_mb() -> float:
    """Peak resident memory of this process so far (0 where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def test_round_trip_is_exact_with_many_channels(tmp_path):
    # A trained model holds transposed weights, a loaded one contiguous
    # ones; with 1024 channels the layouts round a matrix product apart.
    spectra = make_mixture(shape=(30, 30), n_channels=1024, counts=100).spectra
    model = AEUnmix(3, max_epochs=2, random_state=0, show_progressbar=False)
    model.fit(spectra)
    reloaded = load_model(model.save(tmp_path / "wide.aeunmix"))
    np.testing.assert_array_equal(reloaded.transform(spectra), model.transform(spectra))


@pytest.mark.parametrize("init", [*STARTS, "given"])
def test_a_model_from_every_start_saves_and_loads(small_mixture, tmp_path, init):
    """The schema's start names come from the table of starts: none is missed."""
    given = small_mixture.endmembers if init == "given" else init
    model = AEUnmix(3, **{**FAST, "init": given}).fit(small_mixture.spectra)
    loaded = load_model(model.save(tmp_path / "model"))
    assert loaded.init_ == model.init_ == init


def test_deeply_nested_objects_in_the_header(calibrated_file, tmp_path):
    nested = '{"a": ' * 20 + "1" + "}" * 20
    path = _craft(
        calibrated_file,
        tmp_path / "nested_objects.aeunmix",
        edit_text=lambda text: text.replace("{", f'{{"notes": {nested}, ', 1),
    )
    _refused(path, match="nested deeper")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # The decoder holds 3 endmembers: a header saying 4 disagrees.
        (_setter("n_components", value=4), "inconsistent"),
        # A stability report must describe every endmember.
        (_setter("stability", "support", value=[83, 122]), "inconsistent"),
        # The best epoch is one of the epochs trained.
        (_setter("training", "best_epoch", value=2), "inconsistent"),
    ],
    ids=["components", "stability", "best-epoch"],
)
def test_a_header_that_contradicts_itself(calibrated_file, tmp_path, edit, match):
    path = _craft(calibrated_file, tmp_path / "contradiction.aeunmix", edit_header=edit)
    _refused(path, match=match)


def test_a_tensor_shape_must_be_whole_numbers(calibrated_file, tmp_path):
    path = tmp_path / "fractional_shape.aeunmix"
    path.write_bytes(
        _with_outer_shape(calibrated_file.read_bytes(), "module.input_mean", [100.5])
    )
    _refused(path)


def test_a_model_with_a_background_keeps_it(small_mixture, tmp_path):
    spectra = small_mixture.spectra + np.linspace(300.0, 50.0, 100)
    model = AEUnmix(3, **{**FAST, "baseline": 3}).fit(spectra)
    assert model.baseline_components_.shape == (3, 100)
    loaded = load_model(model.save(tmp_path / "background"))
    np.testing.assert_array_equal(
        loaded.baseline_components_, model.baseline_components_
    )
    np.testing.assert_array_equal(loaded.background(spectra), model.background(spectra))
