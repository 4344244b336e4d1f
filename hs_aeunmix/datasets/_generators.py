"""The public generators: synthetic spectrum images with a known answer."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from hyperspy.signals import Signal1D

from hs_aeunmix.datasets._common import (
    GroundTruth,
    RandomState,
    _check_integer,
    _check_positive_float,
    _check_shape,
)
from hs_aeunmix.datasets._eels import _eels_endmembers, _eels_set, _eels_signal
from hs_aeunmix.datasets._raman import (
    _RAMAN_NAMES,
    _RAMAN_PIXEL_SIZE_UM,
    _bernstein_baseline,
    _raman_endmembers,
    _raman_shift_axis,
)
from hs_aeunmix.datasets._scenes import (
    _cell_scene,
    _chequerboard_abundances,
    _chessboard_scene,
    _gaussian_scene,
    _layered_abundances,
    _thickness_map,
)

_DEFAULT_EELS_DOSE = 200.0


def eels_chequerboard(
    n_endmembers: int = 3,
    *,
    shape: tuple[int, int] = (64, 64),
    block_size: int = 8,
    filter_size: int = 9,
    dose: float = _DEFAULT_EELS_DOSE,
    random_state: RandomState = None,
) -> tuple[Signal1D, GroundTruth]:
    """Synthetic STEM-EELS chequerboard spectrum image with Poisson noise.

    Follows the protocol of Brun et al. (2024): the map is divided into
    ``block_size`` x ``block_size`` blocks, each assigned at random to one
    endmember; a ``filter_size`` x ``filter_size`` mean filter then mixes the
    pixels near block boundaries (abundances stay non-negative and sum to
    one); spectra follow the linear mixing model and are degraded by Poisson
    noise.

    Parameters
    ----------
    n_endmembers : {3, 4}
        Endmember set. ``3``: "Co" (Co L2,3 with white lines), "Ni" (Ni L2,3
        with white lines) and "Pt" (background only), 700-899 eV, 200
        channels, 0.12 nm pixels. ``4``: "TiO2" (Ti L2,3 + O K), "Fe2O3"
        (O K + Fe L2,3), "C" (amorphous carbon C K) and "Si3N4" (N K),
        250-1152 eV, 903 channels, 0.5 nm pixels.
    shape : tuple of int
        Navigation shape ``(ny, nx)``.
    block_size : int
        Side of the pure blocks, in pixels.
    filter_size : int
        Side of the mean filter that mixes the blocks, in pixels; ``1``
        keeps all pixels pure.
    dose : float
        Mean expected number of counts per energy channel of a pure pixel,
        averaged over the channels and over the endmembers (the total counts
        of a spectrum are about ``dose * n_channels``). With the default of
        200, a pure Co pixel has ~185 background counts per channel at the
        Co L3 onset; the L3 white line rises ~7 and the continuum edge ~2.5
        times the Poisson noise of one channel above the background: noisy
        but usable, as in a fast STEM-EELS map.
    random_state : int, numpy.random.Generator or None
        Seed or generator for the block assignment and the noise.

    Returns
    -------
    signal : exspy.signals.EELSSpectrum
        Noisy counts (float64, integer-valued), shape ``(ny, nx, n_channels)``
        (a plain :class:`hyperspy.signals.Signal1D` if exspy is missing).
    truth : GroundTruth
        Endmembers in counts per unit abundance, abundances, names and the
        noiseless cube ``abundances @ endmembers``.

    Raises
    ------
    ValueError
        If ``n_endmembers`` is not 3 or 4, or another argument is invalid.

    Notes
    -----
    Each endmember is a power-law background :math:`A E^{-r}` (``r`` between
    2.7 and 3.4) plus hydrogenic core-loss cross-sections computed with
    :class:`exspy.components.EELSCLEdge` (100 keV, 30 mrad convergence, 40 mrad
    collection), stoichiometrically weighted, plus Lorentzian near-edge peaks
    (L3 and L2 white lines with the statistical 2:1 area ratio for Co, Ni and
    Fe; crystal-field split doublets for Ti4+; pi* and sigma* peaks for C),
    convolved with a 1 eV FWHM Gaussian resolution. The continuum edge jump is
    15-30 % of the background 50 eV above the first edge, so the edges sit on
    large, similar backgrounds as in real EELS. The endmember spectra are
    computed once per set and cached.

    Examples
    --------
    >>> from hs_aeunmix.datasets import eels_chequerboard
    >>> signal, truth = eels_chequerboard(3, random_state=0)
    >>> signal.data.shape, truth.names
    ((64, 64, 200), ('Co', 'Ni', 'Pt'))
    """
    endmember_set = _eels_set(n_endmembers)
    shape = _check_shape(shape)
    block_size = _check_integer("block_size", block_size, 1)
    filter_size = _check_integer("filter_size", filter_size, 1)
    dose = _check_positive_float("dose", dose)
    rng = np.random.default_rng(random_state)

    n = len(endmember_set.materials)
    endmembers = _eels_endmembers(endmember_set, dose)
    abundances = _chequerboard_abundances(rng, shape, n, block_size, filter_size)
    noiseless = abundances @ endmembers
    data = rng.poisson(noiseless).astype(np.float64)
    names = tuple(m.name for m in endmember_set.materials)
    title = f"Synthetic EELS chequerboard ({', '.join(names)})"
    signal = _eels_signal(data, endmember_set, title)
    truth = GroundTruth(
        endmembers=endmembers, abundances=abundances, names=names, noiseless=noiseless
    )
    return signal, truth


def eels_no_pure_pixel(
    n_endmembers: int = 3,
    *,
    shape: tuple[int, int] = (64, 64),
    max_fraction: float = 0.7,
    thickness_variation: float = 0.3,
    dose: float = _DEFAULT_EELS_DOSE,
    random_state: RandomState = None,
) -> tuple[Signal1D, GroundTruth]:
    """Synthetic STEM-EELS multilayer without pure pixels, with thickness changes.

    The endmembers form a periodic multilayer along y (two periods over the
    image height, random stacking order, layer thicknesses varying by
    ±20 %) with rough interfaces of error-function profile, as diffuse as the
    layers are thin, so that the centre of a layer is only about
    ``max_fraction`` pure and the rest belongs to its neighbours. The maps are
    blended (90:10) with a smooth Dirichlet composition field and then
    contracted towards equal fractions so that no pixel has a fraction above
    ``max_fraction``: pure-pixel methods such as VCA fail here, as for the Ru
    layer of the paper. A smooth relative-intensity map (a wedge plus bumps)
    multiplies each spectrum, like a change of specimen thickness.

    Parameters
    ----------
    n_endmembers : {3, 4}
        Endmember set, as in :func:`eels_chequerboard`.
    shape : tuple of int
        Navigation shape ``(ny, nx)``; ``ny`` must be at least 2 * n_endmembers
        so that each layer spans pixels.
    max_fraction : float
        Upper bound of every abundance, in ``(1 / n_endmembers, 1]``. The
        most concentrated pixel reaches it exactly for ``max_fraction`` up to
        about 0.9; above, the diffuse interfaces alone keep the maps below it.
    thickness_variation : float
        Relative intensity ranges over
        ``[1 - thickness_variation, 1 + thickness_variation]``, in ``[0, 1)``.
    dose : float
        Mean expected counts per channel of a pure pixel at relative
        intensity 1 (see :func:`eels_chequerboard`).
    random_state : int, numpy.random.Generator or None
        Seed or generator for the scene and the noise.

    Returns
    -------
    signal : exspy.signals.EELSSpectrum
        Noisy counts (float64, integer-valued), shape ``(ny, nx, n_channels)``.
    truth : GroundTruth
        The abundances sum to one, while the intensity scales the spectra:
        ``truth.noiseless == truth.intensity[..., None] * (truth.abundances @
        truth.endmembers)``. Methods that keep the intensity in the abundances
        (no sum-to-one constraint) therefore estimate ``intensity *
        abundances``.

    Raises
    ------
    ValueError
        If an argument is out of range.
    """
    endmember_set = _eels_set(n_endmembers)
    n = len(endmember_set.materials)
    shape = _check_shape(shape)
    if shape[0] < 2 * n:
        raise ValueError(
            f"shape[0] must be at least {2 * n} for {n} layers, got {shape[0]}."
        )
    max_fraction = _check_positive_float("max_fraction", max_fraction)
    if not 1.0 / n < max_fraction <= 1.0:
        raise ValueError(
            f"max_fraction must be in (1/{n}, 1] for {n} endmembers, "
            f"got {max_fraction}."
        )
    if isinstance(thickness_variation, bool) or not isinstance(
        thickness_variation, int | float | np.number
    ):
        raise ValueError(
            f"thickness_variation must be a number, got {thickness_variation!r}."
        )
    if not 0.0 <= thickness_variation < 1.0:
        raise ValueError(
            f"thickness_variation must be in [0, 1), got {thickness_variation}."
        )
    dose = _check_positive_float("dose", dose)
    rng = np.random.default_rng(random_state)

    endmembers = _eels_endmembers(endmember_set, dose)
    abundances = _layered_abundances(rng, shape, n, max_fraction)
    intensity = _thickness_map(rng, shape, float(thickness_variation))
    noiseless = intensity[..., None] * (abundances @ endmembers)
    data = rng.poisson(noiseless).astype(np.float64)
    names = tuple(m.name for m in endmember_set.materials)
    title = f"Synthetic EELS multilayer without pure pixels ({', '.join(names)})"
    signal = _eels_signal(data, endmember_set, title)
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=names,
        noiseless=noiseless,
        intensity=intensity,
    )
    return signal, truth


RamanScene = Literal["chessboard", "gaussian", "dirichlet", "cell"]
_RAMAN_SCENES = ("chessboard", "gaussian", "dirichlet", "cell")
_DEFAULT_BASELINE_AMPLITUDE = 0.5


def raman_scene(
    n_endmembers: int = 4,
    *,
    shape: tuple[int, int] = (64, 64),
    scene: RamanScene = "chessboard",
    n_channels: int = 500,
    snr: float | None = 20.0,
    baseline: bool | float = False,
    cosmic_rays: int = 0,
    random_state: RandomState = None,
) -> tuple[Signal1D, GroundTruth]:
    """Synthetic Raman spectrum image of biomolecule mixtures.

    Parameters
    ----------
    n_endmembers : int
        Number of endmembers, 2 to 6, taken in order from "lipid", "protein",
        "nucleic acid", "water", "cytochrome c" and "carotenoid". Each is a
        sum of Lorentzian bands at literature positions and widths over
        500-3500 cm⁻¹ (fingerprint, CH and OH stretching regions), averaged
        over each channel and normalised to a maximum of 1.
    shape : tuple of int
        Navigation shape ``(ny, nx)``.
    scene : {"chessboard", "gaussian", "dirichlet", "cell"}
        Abundance scene. The first three follow Georgiev et al. (PNAS 2024):
        "chessboard" is about ``n_endmembers`` x ``n_endmembers`` pure blocks
        assigned at random; "gaussian" places Gaussian blobs (width
        ``min(shape) / n_endmembers``) along the diagonal and normalises them
        to sum to one; "dirichlet" draws each pixel from a flat Dirichlet
        distribution. "cell" is a cell in medium (water with a little
        protein) with a cytoplasm, a nucleus, lipid droplets and, when
        cytochrome c is in the library, mitochondria, all with smooth edges;
        it needs ``n_endmembers >= 4`` and ``min(shape) >= 16``.
    n_channels : int
        Number of spectral channels (at least 32).
    snr : float or None
        Signal-to-noise ratio: mean over pixels of the largest noiseless
        intensity of the pixel spectrum, divided by the standard deviation of
        the additive Gaussian noise. None adds no noise.
    baseline : bool or float
        Add a smooth, positive, pixel-dependent fluorescence-like baseline
        (cubic Bernstein polynomial with spatially smooth coefficients).
        True uses an amplitude of 0.5; a float sets the amplitude, relative to
        the mean largest noiseless intensity of the pixel spectra.
    cosmic_rays : int
        Number of single-channel cosmic-ray spikes, placed at random
        pixel/channel positions with heights of 2 to 10 times the mean largest
        noiseless intensity.
    random_state : int, numpy.random.Generator or None
        Seed or generator for the scene, the noise and the artefacts.

    Returns
    -------
    signal : hyperspy.signals.Signal1D
        Spectrum image, shape ``(ny, nx, n_channels)``, navigation axes in µm
        (0.5 µm steps), signal axis "Raman shift" in cm⁻¹.
    truth : GroundTruth
        ``truth.noiseless`` is the linear mixture ``abundances @ endmembers``
        only. The baseline and the cosmic rays are nuisances outside the
        mixing model: they are in ``truth.artefacts`` (None when neither is
        requested), so ``signal.data == noiseless + artefacts + noise``.

    Raises
    ------
    ValueError
        If an argument is out of range or of the wrong type.
    """
    n_endmembers = _check_integer("n_endmembers", n_endmembers, 2)
    if n_endmembers > len(_RAMAN_NAMES):
        raise ValueError(
            f"n_endmembers must be at most {len(_RAMAN_NAMES)}, got {n_endmembers}."
        )
    shape = _check_shape(shape)
    if scene not in _RAMAN_SCENES:
        raise ValueError(f"scene must be one of {_RAMAN_SCENES}, got {scene!r}.")
    if scene == "cell":
        if n_endmembers < 4:
            raise ValueError(
                "The 'cell' scene needs n_endmembers >= 4 (lipid, protein, "
                f"nucleic acid, water), got {n_endmembers}."
            )
        if min(shape) < 16:
            raise ValueError(f"The 'cell' scene needs min(shape) >= 16, got {shape}.")
    n_channels = _check_integer("n_channels", n_channels, 32)
    if snr is not None:
        snr = _check_positive_float("snr", snr)
    if isinstance(baseline, bool):
        baseline_amplitude = _DEFAULT_BASELINE_AMPLITUDE if baseline else 0.0
    elif isinstance(baseline, int | float | np.number) and math.isfinite(baseline):
        if baseline < 0:
            raise ValueError(f"baseline amplitude must be >= 0, got {baseline}.")
        baseline_amplitude = float(baseline)
    else:
        raise ValueError(f"baseline must be a bool or a number, got {baseline!r}.")
    cosmic_rays = _check_integer("cosmic_rays", cosmic_rays, 0)
    n_values = shape[0] * shape[1] * n_channels
    if cosmic_rays > n_values:
        raise ValueError(
            f"cosmic_rays must be at most the number of data values ({n_values})."
        )
    rng = np.random.default_rng(random_state)

    endmembers = _raman_endmembers(n_endmembers, n_channels)
    if scene == "chessboard":
        abundances = _chessboard_scene(rng, shape, n_endmembers)
    elif scene == "gaussian":
        abundances = _gaussian_scene(shape, n_endmembers)
    elif scene == "dirichlet":
        abundances = rng.dirichlet(np.ones(n_endmembers), size=shape)
    else:
        abundances = _cell_scene(rng, shape, n_endmembers)
    noiseless = abundances @ endmembers
    peak_intensity = float(noiseless.max(axis=-1).mean())

    artefacts = None
    if baseline_amplitude > 0 or cosmic_rays > 0:
        artefacts = np.zeros_like(noiseless)
        if baseline_amplitude > 0:
            artefacts += (baseline_amplitude * peak_intensity) * _bernstein_baseline(
                rng, shape, n_channels
            )
        if cosmic_rays > 0:
            positions = rng.choice(n_values, size=cosmic_rays, replace=False)
            heights = rng.uniform(2.0, 10.0, cosmic_rays) * peak_intensity
            artefacts.reshape(-1)[positions] += heights

    data = noiseless.copy() if artefacts is None else noiseless + artefacts
    if snr is not None:
        data += rng.normal(0.0, peak_intensity / snr, size=data.shape)

    offset, scale = _raman_shift_axis(n_channels)
    ny, nx = shape
    axes = [
        {
            "name": "y",
            "units": "µm",
            "scale": _RAMAN_PIXEL_SIZE_UM,
            "offset": 0.0,
            "size": ny,
        },
        {
            "name": "x",
            "units": "µm",
            "scale": _RAMAN_PIXEL_SIZE_UM,
            "offset": 0.0,
            "size": nx,
        },
        {
            "name": "Raman shift",
            "units": "cm⁻¹",
            "scale": scale,
            "offset": offset,
            "size": n_channels,
        },
    ]
    signal = Signal1D(data, axes=axes)
    names = _RAMAN_NAMES[:n_endmembers]
    signal.metadata.General.title = (
        f"Synthetic Raman {scene} scene ({', '.join(names)})"
    )
    signal.metadata.set_item("Signal.quantity", "Intensity (a.u.)")
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=names,
        noiseless=noiseless,
        artefacts=artefacts,
    )
    return signal, truth
