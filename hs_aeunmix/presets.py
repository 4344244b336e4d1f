"""The unmixing methods of the papers this package comes from, as presets.

A preset is a named set of :class:`~hs_aeunmix.AEUnmix` options, not a
separate code path: ``AEUnmix.from_preset("daeu", 3)`` or
``s.decomposition(algorithm="ae", preset="daeu", output_dimension=3)``
returns an ordinary estimator whose ``get_params()`` shows every value, and
any option passed beside the preset replaces the preset's value. Each
function below returns the options of one preset for ``n_components``
endmembers; its docstring cites the paper and lists what the paper leaves
open and what was chosen.

The papers train every weight with one optimiser, from a VCA (or random)
start, on the whole spectrum, with abundances that carry the intensity
themselves; every preset therefore trains with :data:`PAPER_TRAINING` (one
Adam step size of 1e-3 for the encoder and the endmembers, VCA start,
batches of 128 pixels, up to 200 passes over a 64 x 64 scan, early stopping
after 20 passes without improvement on 10 % held-out pixels, no per-pixel
intensity, the encoder reading every channel) rather than the package
defaults, unless the paper says otherwise. The package counts training in
epochs of 50 steps whatever the scan (see ``AEUnmix.max_epochs``): a pass
over the 3,686 training pixels of a 64 x 64 scan in batches of 128 is 29
steps, so 200 passes are 116 epochs and 20 passes 12.
"""

from __future__ import annotations

from collections.abc import Callable

PAPER_TRAINING = {
    "pixel_scale": False,
    "input_components": None,
    "init": "vca",
    "learning_rate": 1e-3,
    "endmember_learning_rate": 1e-3,
    "batch_size": 128,
    # 200 and 20 passes over a 64 x 64 scan (29 steps each) in 50-step epochs.
    "max_epochs": 116,
    "patience": 12,
}


def pnas2024(n_components: int) -> dict:
    """Georgiev et al., PNAS 121, e2407439121 (2024): Raman unmixing autoencoder.

    Encoder: four parallel 1-D convolutions (kernels 5, 10, 15, 20; 32
    filters each; ReLU; He initialisation; 'same' padding; batch norm and
    dropout 0.2 on each), merged back to the spectrum length, then fully
    connected layers 256-128-64-32 (He, ReLU, batch norm, dropout 0.5) and a
    final Xavier-uniform layer to ``n_components``; softly-rectified tanh
    abundances (gamma = 10); linear non-negative decoder.

    Left open by the paper, chosen here: the "fully connected layer" that
    merges the branches channel-wise is a 1 x 1 convolution (one weight per
    filter, shared along the spectrum: a dense layer over all filters and
    channels would have millions of weights); the loss is the mean squared
    error; the optimiser, learning rate, batch size and stopping rule are the
    package defaults; initial endmembers from VCA.

    Measured on the eels3 case (``benchmarks/conv_encoder.py``): the paper's
    abundance layer is what limits the accuracy (0.023 rad, abundance RMSE
    0.31 in 20 epochs); with ``abundance="sum_to_one"`` the same network
    reaches 0.0049 rad and 0.071, the variant to use for accuracy. A
    training step costs 8-10 ms eagerly on 2 CPU cores (batch 128, 200
    channels), most of it in the encoder, whose branches are computed as one
    (:class:`~hs_aeunmix._networks.MultiBranchConvEncoder`); a run of at
    least :data:`~hs_aeunmix._training.COMPILE_MIN_STEPS` steps (the paper's
    length is 5,800) goes through ``torch.compile``. The paper's training
    of a 64 x 64 scan then takes 55-59 s once torch's compiled kernels are
    on disk, and 74 s the first time on a machine (about 19 s of compiling;
    ``benchmarks/scale.py``, ``benchmarks/conv_encoder.py --paper-length``).
    """
    return {
        **PAPER_TRAINING,
        "encoder": "conv",
        "kernel_sizes": (5, 10, 15, 20),
        "n_filters": 32,
        "conv_dropout": 0.2,
        "hidden_layer_sizes": (256, 128, 64, 32),
        "activation": "relu",
        "batch_norm": True,
        "dropout": 0.5,
        "abundance": "nonnegative",
        "loss": "mse",
    }


def volume(n_components: int) -> dict:
    """Jensen et al., single-cell Raman unmixing with volume regularisation.

    Encoder: parallel 1-D convolutions (kernels 3 and 5, 16 filters each),
    concatenated, linearly projected, a fully connected layer of 128 units,
    then the latent layer of ``n_components``; softplus-tanh (softly-rectified
    tanh) abundances; endmembers kept non-negative by clipping after each
    step; loss = squared reconstruction error + lambda (det(E Eᵀ + εI) +
    ε)^(-1/2) with lambda = 1e-7 as in the paper.

    Left open by the paper, chosen here: the projection is a 1 x 1
    convolution back to the spectrum length (as in :func:`pnas2024`); ReLU
    activations, no batch norm, no dropout (none is mentioned); ε = 1e-6.
    The paper's lambda depends on its data scaling; here the data are divided
    by the maximum of their mean spectrum and the Gram matrix by the number of
    channels (see :mod:`hs_aeunmix._losses`), so the same lambda means the
    same thing on any data set, but 1e-7 is then far too small to change the
    result: pass ``volume_weight`` to strengthen it (the benchmark shows
    several values).
    """
    return {
        **PAPER_TRAINING,
        "encoder": "conv",
        "kernel_sizes": (3, 5),
        "n_filters": 16,
        "conv_dropout": 0.0,
        "hidden_layer_sizes": (128,),
        "activation": "relu",
        "batch_norm": False,
        "dropout": 0.0,
        "abundance": "nonnegative",
        "loss": "mse",
        "volume_weight": 1e-7,
    }


def daeu(n_components: int) -> dict:
    """DAEU: Palsson et al., IEEE Access 6, 25646 (2018), as used on EELS by Brun et al.

    Encoder: fully connected ``9n -> 6n -> 3n -> n`` with leaky ReLU, then
    batch normalisation, dynamical soft thresholding (a learned non-negative
    threshold per endmember), abundance sum-to-one by division by the sum,
    and Gaussian dropout (rate 0.0045) before the decoder; spectral-angle
    loss; trained for 40 epochs.

    Left open or changed here: the published code uses no biases, RMSprop
    with batch size 6 on 2000 random spectra; here the layers keep their
    biases and the package's Adam, batch size 128 and all pixels are used
    (40 epochs with batch size 6 would cost minutes on a laptop CPU), VCA
    start (the published code starts from random weights). Leaky ReLU slope
    0.1 as in the published code.
    """
    return {
        **PAPER_TRAINING,
        "encoder": "dense",
        "hidden_layer_sizes": (9 * n_components, 6 * n_components, 3 * n_components),
        "activation": "leaky_relu",
        "negative_slope": 0.1,
        "batch_norm": False,
        "dropout": 0.0,
        "abundance": "thresholded_sum_to_one",
        "gaussian_dropout": 0.0045,
        "loss": "sad",
        # 40 passes over a 64 x 64 scan (29 steps each) in 50-step epochs.
        "max_epochs": 23,
    }


def udas(n_components: int) -> dict:
    """uDAS idea: Qu and Qi, IEEE TGRS 57, 1698 (2019), best on EELS in Brun et al.

    An untied denoising autoencoder with sparsity: a single-layer encoder
    (linear map to ``n_components``, non-negative abundances) trained to
    reconstruct the data from a noisy copy (denoising constraint), an l2,1
    penalty on the endmembers, initialisation from VCA.

    Left open or changed here: uDAS solves its problem by alternating
    projected-gradient steps with a marginalised denoising autoencoder
    estimated beforehand; here one network is trained end to end with
    Gaussian noise of standard deviation 0.3 (in units of each channel's
    spread) on the encoder's input. The abundances are non-negative and
    bounded by one (softly-rectified tanh; uDAS clips them to [0, 1]). The
    l2,1 penalty is the sum over endmembers of their RMS value with weight
    1e-3 (uDAS weighs its own normalisation with 1e-6 sqrt(n_pixels / 1000)).
    """
    return {
        **PAPER_TRAINING,
        "encoder": "dense",
        "hidden_layer_sizes": (),
        "abundance": "nonnegative",
        "input_noise": 0.3,
        "endmember_l21_weight": 1e-3,
        "loss": "mse",
    }


PRESETS: dict[str, Callable[[int], dict]] = {
    "pnas2024": pnas2024,
    "volume": volume,
    "daeu": daeu,
    "udas": udas,
}


def preset_options(name: str, n_components: int) -> dict:
    """The options of preset ``name`` for ``n_components`` endmembers."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(
            f"preset={name!r} is not one of {', '.join(PRESETS)}; see "
            "hs_aeunmix.presets for what each one is."
        )
    if isinstance(n_components, bool) or not isinstance(n_components, int):
        raise TypeError(
            f"A preset needs n_components (output_dimension), got {n_components!r}."
        )
    return PRESETS[name](n_components)
