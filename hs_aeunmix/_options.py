"""Checks of ``decomposition(algorithm="ae", ...)`` calls, before any work is done.

Each check turns a call that would give a wrong or meaningless result into
an error that says what to do: options HyperSpy would silently drop or apply
after the fit (Poisson normalisation, centring), options that contradict a
given model or estimator, signals the autoencoder cannot unmix. One check
warns instead: EDS spectra that still hold the detector's zero-energy peak.
"""

from __future__ import annotations

import warnings

import numpy as np

from hs_aeunmix._estimator import AEUnmix
from hs_aeunmix._validation import check_not_complex

# Options of ``decomposition`` that are not AEUnmix hyperparameters.
GLUE_OPTIONS = ("preset", "model", "fine_tune")
# EDS detectors record a noise peak centred at 0 keV (its width about 0.1
# keV); channels below this energy hold it.
ZERO_PEAK_KEV = 0.1
# Fine-tuning is a warm start: a few epochs unless max_epochs says otherwise.
FINE_TUNE_EPOCHS = 30


def autoencoder_options() -> list[str]:
    """Keyword arguments of ``decomposition`` that configure the autoencoder."""
    return [name for name in AEUnmix._get_param_names() if name != "n_components"]


def check_signal(signal, *, reapplying: bool) -> None:
    """Refuse signals that are not spectra on a scan."""
    axes = signal.axes_manager
    if axes.signal_dimension == 0:
        # HyperSpy does not count an axis of one channel as a signal axis: a
        # scan cropped to one channel would otherwise be told to become the
        # Signal1D it already is.
        channels = "no spectral axis" if not axes.signal_shape else "1 channel"
        raise ValueError(
            "algorithm='ae' unmixes spectra of at least 2 channels, but this "
            f"signal has {channels} per pixel. Unmix the spectrum image before "
            "cropping, selecting or summing its channels."
        )
    if axes.signal_dimension != 1:
        raise ValueError(
            "algorithm='ae' unmixes 1-D spectra, but this signal has signal "
            f"dimension {axes.signal_dimension}. Use a Signal1D (for example "
            "s.transpose(signal_axes=1))."
        )
    if axes.navigation_size < 2:
        if reapplying:
            raise ValueError(
                "HyperSpy decomposes signals of at least two spectra, but this "
                "signal holds a single spectrum. Unmix it with the model directly: "
                "hs_aeunmix.load_model(model).transform(s.data.reshape(1, -1))."
            )
        raise ValueError(
            "algorithm='ae' learns endmembers from many spectra, but this signal "
            "holds a single spectrum (navigation dimension "
            f"{axes.navigation_dimension}). Unmix a spectrum image or line scan, "
            "or apply a trained model to this spectrum (model.transform)."
        )
    check_not_complex(signal.data)


def warn_about_zero_energy_peak(signal, signal_mask) -> None:
    """Warn when an EDS spectrum image still holds the zero-energy peak.

    The detector's noise peak at 0 keV is added to every spectrum, outside
    the mixing model, so every endmember takes a share of it (on the EDS
    scenes of :func:`hs_aeunmix.datasets.eds_scene` that keep it, every
    method's endmembers were more than 1 rad from the truth, and about 0.35
    rad once it was cropped). Only signals whose type is EDS and whose
    energy axis (eV or keV) goes below :data:`ZERO_PEAK_KEV` in channels that
    ``signal_mask`` does not mask.
    """
    signal_type = str(signal.metadata.get_item("Signal.signal_type", "") or "")
    axis = signal.axes_manager.signal_axes[0]
    to_kev = {"kev": 1.0, "ev": 1e-3}.get(str(axis.units).lower())
    if not signal_type.upper().startswith("EDS") or to_kev is None:
        return
    energies = np.asarray(axis.axis)
    near_zero = energies * to_kev < ZERO_PEAK_KEV
    if signal_mask is not None:
        near_zero &= ~np.asarray(signal_mask, dtype=bool).ravel()
    if near_zero.any():
        lowest = float(energies[near_zero][0])
        warnings.warn(
            f"This EDS spectrum image starts at {lowest:g} {axis.units}, where "
            "the detector records its zero-energy (noise) peak: a peak added "
            "to every spectrum, outside the mixing model, which every "
            "endmember then takes a share of. Crop it first "
            "(s.crop_signal(0.2) on a keV axis) or mask those channels "
            "(signal_mask=).",
            UserWarning,
            stacklevel=4,
        )


def check_decomposition_arguments(arguments: dict) -> None:
    """Refuse HyperSpy options that would change the results' meaning."""
    if arguments.get("normalize_poissonian_noise"):
        raise ValueError(
            "normalize_poissonian_noise=True rescales the abundances after the "
            "fit, which breaks their sum-to-one and non-negativity meaning. For "
            "count data (EELS, EDS) use the Poisson likelihood instead: "
            "s.decomposition(algorithm='ae', loss='poisson', ...)."
        )
    if arguments.get("centre") is not None:
        raise ValueError(
            f"centre={arguments['centre']!r} subtracts a mean spectrum, but the "
            "linear mixing model has no offset: abundances and endmembers "
            "describe the data themselves. Leave centre out with algorithm='ae'."
        )


def check_conv_axis(estimator: AEUnmix, signal) -> None:
    """The convolutional encoder needs equally spaced channels."""
    axis = signal.axes_manager.signal_axes[0]
    if estimator.encoder == "conv" and not axis.is_uniform:
        raise ValueError(
            "encoder='conv' convolves along the spectrum and needs equally "
            "spaced channels, but this signal axis is non-uniform. Interpolate "
            "onto a uniform axis first (s.interpolate_on_axis) or use "
            "encoder='dense', which does not assume a channel spacing."
        )


def make_estimator(algorithm, output_dimension, extra_options: dict) -> AEUnmix:
    """The estimator a training call describes (an instance, or "ae" + options)."""
    if isinstance(algorithm, AEUnmix):
        if extra_options:
            raise TypeError(
                f"Options {sorted(extra_options)} are ignored when algorithm is an "
                "AEUnmix instance; set them on the instance, e.g. "
                "AEUnmix(n_components=3, max_epochs=100)."
            )
        if algorithm.n_components is None:
            raise ValueError(
                "The AEUnmix instance has n_components=None; set the number of "
                "endmembers, e.g. AEUnmix(n_components=3)."
            )
        if output_dimension is not None and output_dimension != algorithm.n_components:
            raise ValueError(
                f"output_dimension={output_dimension} disagrees with the "
                f"estimator's n_components={algorithm.n_components}."
            )
        return algorithm
    extra_options = dict(extra_options)
    preset = extra_options.pop("preset", None)
    if extra_options.pop("fine_tune", False):
        raise TypeError(
            "fine_tune=True continues training a saved model: pass it with "
            "model=..., e.g. s.decomposition(algorithm='ae', "
            "model='series.aeunmix', fine_tune=True)."
        )
    unknown = sorted(set(extra_options) - set(autoencoder_options()))
    if unknown:
        raise TypeError(
            f"Unknown option(s) {unknown} for algorithm='ae'. Valid options: "
            f"{', '.join([*autoencoder_options(), *GLUE_OPTIONS])}."
        )
    if output_dimension is None:
        raise ValueError(
            "algorithm='ae' needs output_dimension, the number of endmembers to "
            "extract, e.g. s.decomposition(algorithm='ae', output_dimension=3). "
            "The scree plot of an SVD decomposition helps to choose it, or "
            "hs_aeunmix.scan_components."
        )
    if preset is not None:
        return AEUnmix.from_preset(preset, output_dimension, **extra_options)
    return AEUnmix(n_components=output_dimension, **extra_options)


def check_output_dimension(output_dimension, model: AEUnmix) -> None:
    """A number of endmembers given with a trained model must be the model's."""
    n_components = model.components_.shape[0]
    if output_dimension is not None and output_dimension != n_components:
        raise ValueError(
            f"output_dimension={output_dimension} disagrees with the model, which "
            f"unmixes {n_components} endmembers; leave output_dimension out."
        )


def fine_tune_options(
    algorithm, output_dimension, signal_mask, options: dict, model: AEUnmix, fine_tune
) -> dict | None:
    """Check a call that applies ``model``; the fine-tuning options, or None.

    ``options`` are the call's other keyword arguments.
    """
    if not isinstance(algorithm, str):
        raise TypeError(
            "model= is given to algorithm='ae'; an AEUnmix instance as algorithm "
            "is a model to train. Use s.decomposition(algorithm='ae', model=...)."
        )
    if not isinstance(fine_tune, bool | np.bool_):
        raise TypeError(f"fine_tune must be True or False, got {fine_tune!r}.")
    check_output_dimension(output_dimension, model)
    if signal_mask is not None:
        raise ValueError(
            "signal_mask cannot be combined with model=: a trained model unmixes "
            "the channels it was trained on (its own signal mask is applied "
            "automatically)."
        )
    if "preset" in options:
        raise TypeError(
            "preset= configures a new model; with model= the saved model's own "
            "options are used. Leave preset out."
        )
    if not fine_tune:
        if options:
            raise TypeError(
                f"Options {sorted(options)} configure training, but model= without "
                "fine_tune=True only applies the trained model. Add fine_tune=True "
                "to continue training it with these options."
            )
        return None
    unknown = sorted(set(options) - set(autoencoder_options()))
    if unknown:
        raise TypeError(
            f"Unknown option(s) {unknown} for fine-tuning. Valid options: "
            f"{', '.join(autoencoder_options())}."
        )
    return {"max_epochs": FINE_TUNE_EPOCHS, **options}
