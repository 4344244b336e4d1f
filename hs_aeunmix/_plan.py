"""What a fit is asked to do, as values: :class:`FitPlan`, and the networks it builds.

The estimator validates its hyperparameters and turns them into one frozen
:class:`FitPlan` (:func:`fit_plan`); the solver
(:func:`hs_aeunmix._fitting.fit_state`) reads only the plan, never the
estimator. A :class:`NetworkPlan` builds a new network
(:func:`build_network`) or one that receives a fitted state's weights
(:func:`network_from_state`), so that a trained, a reloaded and a
warm-started model are built by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from hs_aeunmix._losses import LOSS_SPECS
from hs_aeunmix._networks import NetworkOptions, UnmixingAutoencoder, build_autoencoder
from hs_aeunmix._state import FittedState


@dataclass(frozen=True)
class NetworkPlan:
    """The network the hyperparameters describe.

    Attributes
    ----------
    options : NetworkOptions
        The architecture.
    max_shift : float or None
        Largest per-pixel energy offset (channels), None for none.
    input_components : int or None
        Principal components the dense encoder's input is projected on.
    pixel_scale : bool or "auto"
        The per-pixel intensity asked for (``"auto"``: decided by the fit).
    """

    options: NetworkOptions
    max_shift: float | None
    input_components: int | None
    pixel_scale: bool | str


@dataclass(frozen=True)
class TrainingPlan:
    """The training loop's options and the weights of the objective."""

    batch_size: int
    max_epochs: int
    learning_rate: float
    endmember_learning_rate: float | None
    patience: int
    show_progressbar: bool
    sad_weight: float
    volume_weight: float
    l21_weight: float
    min_volume_weight: float


@dataclass(frozen=True, eq=False)
class FitPlan:
    """Everything :func:`~hs_aeunmix._fitting.fit_state` needs from the options.

    Attributes
    ----------
    n_components : int
        Endmembers to learn (checked against the data).
    init : str or numpy.ndarray
        A start of :data:`hs_aeunmix._initialisation.STARTS`, ``"auto"``, or
        initial endmembers in the data's units.
    loss : str
        The loss, ``"auto"`` resolved (:data:`hs_aeunmix._losses.LOSSES`).
    validation_fraction : float
        Share of the sample held out.
    spatial_weight : float
        Weight of the spatial prior (``spatial=True``).
    network, training : NetworkPlan, TrainingPlan
    """

    n_components: int
    init: str | np.ndarray
    loss: str
    validation_fraction: float
    spatial_weight: float
    network: NetworkPlan
    training: TrainingPlan


def build_network(
    plan: NetworkPlan,
    n_channels: int,
    n_components: int,
    *,
    scale_rule: str,
    endmembers: np.ndarray | None = None,
    input_mean=None,
    input_scale=None,
    input_projection=None,
    pixel_total: float | None = None,
    n_fixed: int = 0,
    baseline_basis: torch.Tensor | None = None,
    baseline_terms: int = 0,
    input_components: int | None = None,
) -> UnmixingAutoencoder:
    """The network ``plan`` describes.

    Without initial values (a network about to receive trained weights)
    the endmembers are zeros, the input stage is neutral and placeholders
    stand for the buffers the weights will fill: a projection on
    ``input_components`` components, ``n_fixed`` fixed endmembers, a
    background of ``baseline_terms``.
    """
    if endmembers is None:
        endmembers = np.zeros((n_components, n_channels), dtype=np.float32)
        if input_components is not None:
            input_projection = torch.zeros((n_channels, input_components))
        if baseline_terms:
            baseline_basis = torch.zeros((n_channels, baseline_terms))
    n_inputs = n_channels if input_projection is None else input_projection.shape[1]
    if input_mean is None:
        input_mean = torch.zeros(n_channels)
    if input_scale is None:
        input_scale = torch.ones(n_inputs)
    fixed = None
    if n_fixed:
        # On the CPU even while a skeleton is laid out on the meta device:
        # the decoder reads the mask when it is built.
        fixed = torch.zeros(n_components, dtype=torch.bool, device="cpu")
        fixed[:n_fixed] = True
    return build_autoencoder(
        plan.options,
        endmembers=torch.from_numpy(np.asarray(endmembers, dtype=np.float32)),
        input_mean=input_mean,
        input_scale=input_scale,
        input_projection=input_projection,
        pixel_total=pixel_total,
        scale_rule=scale_rule,
        fixed_endmembers=fixed,
        baseline_basis=baseline_basis,
        max_shift=plan.max_shift,
    )


def network_plan(params: dict, spatial: bool) -> NetworkPlan:
    """The network an estimator's hyperparameters (``get_params()``) describe.

    ``spatial``: whether it has the neighbourhood layer (``spatial="auto"``
    resolves to whether the fit had the scan grid).
    """
    return NetworkPlan(
        options=NetworkOptions(
            encoder=params["encoder"],
            abundance=params["abundance"],
            hidden_layer_sizes=tuple(params["hidden_layer_sizes"]),
            activation=params["activation"],
            negative_slope=float(params["negative_slope"]),
            batch_norm=bool(params["batch_norm"]),
            dropout=float(params["dropout"]),
            kernel_sizes=tuple(params["kernel_sizes"]),
            n_filters=params["n_filters"],
            conv_dropout=float(params["conv_dropout"]),
            input_noise=float(params["input_noise"]),
            gaussian_dropout=float(params["gaussian_dropout"]),
            spatial=spatial,
        ),
        max_shift=params["max_shift"],
        input_components=params["input_components"],
        pixel_scale=params["pixel_scale"],
    )


def fit_plan(params: dict, n_components: int, spatial: bool, loss: str) -> FitPlan:
    """What :func:`~hs_aeunmix._fitting.fit_state` is asked to do (loss resolved)."""
    return FitPlan(
        n_components=n_components,
        init=params["init"],
        loss=loss,
        validation_fraction=params["validation_fraction"],
        spatial_weight=params["spatial_weight"],
        network=network_plan(params, spatial),
        training=TrainingPlan(
            batch_size=params["batch_size"],
            max_epochs=params["max_epochs"],
            learning_rate=params["learning_rate"],
            endmember_learning_rate=params["endmember_learning_rate"],
            patience=params["patience"],
            show_progressbar=params["show_progressbar"],
            sad_weight=params["sad_weight"],
            volume_weight=params["volume_weight"],
            l21_weight=params["endmember_l21_weight"],
            min_volume_weight=params["min_volume_weight"],
        ),
    )


class _SkipRandomInitialisation(TorchFunctionMode):
    """Random initialisation of meta tensors is skipped (:func:`network_from_state`)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _RANDOM_INITIALISATIONS and args and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


_RANDOM_INITIALISATIONS = (torch.Tensor.normal_, torch.Tensor.uniform_)


def network_from_state(plan: NetworkPlan, state: FittedState) -> UnmixingAutoencoder:
    """A network built from ``plan``, holding ``state``'s weights.

    The network is laid out on torch's meta device (no memory, no use of
    the global random generator) and receives copies of the weights.

    Raises
    ------
    ValueError
        The weights describe another network than ``plan`` does.
    """
    weights = state.module_state
    projection = weights.get("input_projection")
    dense_projection = (
        plan.options.encoder == "dense" and plan.input_components is not None
    )
    if (projection is not None) != dense_projection or (
        plan.pixel_scale != "auto"
        and ("pixel_total" in weights) != bool(plan.pixel_scale)
    ):
        raise ValueError(
            "the weights do not match the options: pixel_scale and "
            "input_components describe another input stage"
        )
    # Checked before anything is built: a crafted file listing thousands
    # of hidden layers would otherwise build them all first.
    hidden = {
        name.split("hidden.")[1].split(".")[0]
        for name in weights
        if name.startswith(("encoder.hidden.", "encoder.reduction.hidden."))
    }
    n_hidden = len(plan.options.hidden_layer_sizes)
    if len(hidden) != n_hidden:
        raise ValueError(
            f"the weights hold {len(hidden)} hidden layers, the options "
            f"describe {n_hidden} (hidden_layer_sizes)"
        )
    fixed = weights.get("decoder.fixed_mask")
    # Built on the "meta" device (nothing allocated: a crafted file
    # declaring huge layers is refused for free); the random initial
    # weights are skipped, since they are replaced below and drawing
    # them on meta tensors imports torch._dynamo (80 MiB, a second).
    with torch.device("meta"), _SkipRandomInitialisation():
        module = build_network(
            plan,
            state.n_channels,
            state.n_components,
            scale_rule=LOSS_SPECS[state.loss].scale_rule,
            pixel_total=1.0 if "pixel_total" in weights else None,
            input_components=None if projection is None else projection.shape[1],
            n_fixed=0 if fixed is None else int(fixed.sum()),
            baseline_terms=state.baseline_terms,
        )
    expected = module.state_dict()
    for name, tensor in state.module_state.items():
        if name in expected and tensor.dtype != expected[name].dtype:
            raise ValueError(
                f"the weights {name} are of type {tensor.dtype}, the network's "
                f"of type {expected[name].dtype}"
            )
    # Contiguous copies: a freshly trained state holds transposed views
    # (decoder, input projection), a loaded one does not, and a matrix
    # product's rounding depends on the layout. The same layout makes
    # a saved and reloaded model encode exactly as the original.
    weights = {
        name: tensor.clone(memory_format=torch.contiguous_format)
        for name, tensor in state.module_state.items()
    }
    try:
        module.load_state_dict(weights, assign=True)
    except RuntimeError as error:
        detail = str(error).splitlines()[1:2]
        raise ValueError(
            "The fitted weights do not fit the network the current options "
            "describe (changed n_components, encoder, abundance, "
            "hidden_layer_sizes, kernel_sizes, n_filters, batch_norm or "
            "spatial). Restore those options, or set warm_start=False to "
            f"train a new network. {' '.join(detail).strip()}"
        ) from error
    return module
