"""What ``fit`` learns, as one value: :class:`FittedState`.

The estimator exports its fitted state with ``AEUnmix._fitted_state()`` and
rebuilds itself from one with ``AEUnmix._restore(state)``; model files turn
a state (and the hyperparameters) into bytes and back, and the intensity
calibration of a later scan derives a new state from an old one. Nothing
else sets fitted attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hs_aeunmix._axes import SignalCalibration
from hs_aeunmix._training import TrainingHistory


@dataclass(frozen=True, eq=False)
class FittedState:
    """The fitted part of an :class:`~hs_aeunmix.AEUnmix`.

    Attributes
    ----------
    module_state : dict of str to torch.Tensor
        The network's ``state_dict`` (CPU tensors), in the scaled units the
        network works in.
    n_channels, n_components : int
        Shape of the network: spectral channels and endmembers.
    data_scale : float
        The global scale the data are divided by before the network.
    init : str
        How training started (``init_``).
    loss : str
        The loss trained on (``loss_``).
    intensity_spread : float
        Relative spread of the pixels' total abundance at the start
        (``intensity_spread_``).
    intensity_reference : float
        Intensity measurement of the training spectra (``intensity_reference_``).
    history : TrainingHistory
        Losses per epoch (``history_``).
    signal_calibration : SignalCalibration or None
        Spectral axis of the training signal (``signal_calibration_``).
    trained_on : str
        The device training ran on, for the record.
    screening : dict of str to int
        What training left out or repaired (``screening_``): dead pixels,
        spike values and the pixels holding them.
    report : dict or None
        The stability report of the starts (``stability_``), as
        :meth:`~hs_aeunmix._selection.StabilityReport.as_dict`; None for
        models from files that predate it.
    baseline_terms : int
        Terms of the polynomial background per pixel (0: none).
    training_residual : float or None
        Relative residual of the model on its training spectra
        (``training_residual_``); None for spatial models and files that
        predate it.
    """

    module_state: dict[str, torch.Tensor]
    n_channels: int
    n_components: int
    data_scale: float
    init: str
    loss: str
    intensity_spread: float
    intensity_reference: float
    history: TrainingHistory
    signal_calibration: SignalCalibration | None
    trained_on: str
    screening: dict[str, int] = field(default_factory=dict)
    report: dict | None = None
    baseline_terms: int = 0
    training_residual: float | None = None
