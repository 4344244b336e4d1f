"""An independent family of synthetic STEM-EELS core-loss spectrum images.

Each scene is a core-loss spectrum image of a specimen made of 2 to 6 real
compounds (:data:`COMPOUNDS`: oxides, nitrides, carbides, carbon, metals, a
fluoride) with a known ground truth, built from eXSpy's model components. It
is written independently of the package's other scene generators, so that
defaults chosen on one family can be checked on the other.

Seeding
-------
Scene ``index`` of split ``"development"`` (id 0) or ``"held_out"`` (id 1)
draws everything from ``numpy.random.default_rng(SeedSequence(entropy=
_ENTROPY, spawn_key=(split_id, index)))``: the halves never share a stream,
and a scene is bit-identical on every call.

What is drawn, in order
-----------------------
1. A block of 24 uniforms ``u[0..23]`` sets the top-level parameters, so that
   overriding some (``**overrides``) leaves the others as drawn:
   ``n_endmembers`` uniform on 2..6 (u0); ``shape`` (ny, nx), each uniform on
   32..80 (u1, u2); ``n_channels`` log-uniform on [150, 600] (u3);
   ``dispersion`` log-uniform on [max(0.05, 40 / n_channels), 1] eV, so that
   the window spans 40 eV or more (u4); ``dose``, the mean total counts per
   spectrum, log-uniform on [10, 20000] (u5); ``drift_channels``, the largest
   drift, 0 if u6 < 1/3, else uniform on [0, 3] channels (u7);
   ``pure_pixels`` if u8 < 1/2; ``structure`` uniform over
   :data:`STRUCTURES` (u9); ``thickness_variation`` 0 if u10 < 1/4, else
   uniform on [0.02, 0.4] (u11); ``t_lambda``, the mean t/lambda of plural
   scattering, uniform on [0.2, 0.8] if u12 < 0.4, else 0 (none) (u13);
   ``artefacts`` if u14 < 0.3; a detector gain if u15 < 0.3, log-uniform on
   [0.5, 5] ADU per electron (u22) with a Gaussian read noise uniform on
   [0.5, 3] ADU (u23), else gain 1 and no read noise; ``beam_energy``
   uniform over 60, 80, 100, 120, 200, 300 kV (u16); the collection
   semi-angle log-uniform on [10, 100] mrad (u17); the convergence
   semi-angle uniform on [5, 35] mrad (u18); the resolution (FWHM) uniform on
   [0.3, 1.5] eV (u19); the pixel size log-uniform on [0.2, 5] nm (u20); the
   drift kind, a ramp if u21 < 0.7, else a step. The ``"gradient"``
   structure has no pure pixels: it sets ``pure_pixels`` to False, unless
   ``pure_pixels=True`` is passed, in which case the structure is the
   ``int(5 * (6 * u9 - 5))``-th of the other five.
2. Phases and energy window, drawn again together until every two
   endmembers are 0.02 rad or more apart in spectral angle: an anchor, one
   (compound, edge) pair uniform over all such pairs (so edges that many
   compounds share, O K first, come most often); the window start, which
   puts the anchor onset at a fraction uniform on [0.15, 0.45] of the window
   (the start is 60 eV or more); anchors are drawn again until at least
   ``n_endmembers - 1`` compounds (the candidates) have an edge onset between
   8 % and 80 % of the window; ``n_endmembers - 1`` distinct candidates, and
   a last phase from the other candidates with probability 3/4, else from
   all other compounds; a power-law exponent r0 uniform on [2.5, 4]; per
   phase, r = r0 + uniform [-0.4, 0.4] clipped to [2, 4.5], a
   background-to-edge ratio log-uniform on [0.3, 3] (the background at the
   window start, over the scene's mean largest edge signal) and a
   scattering strength log-uniform on [0.7, 1.4].
3. Abundances from the structure, drawn again until every phase is the
   largest fraction in 16 pixels or more (and, with pure pixels, above 0.98
   in 9 pixels or more). Without pure pixels, ``max_fraction`` uniform on
   [max(0.5, 1/n + 0.1), 0.9]; a pixel whose largest fraction exceeds it is
   mixed towards the uniform composition until the largest equals it, which
   keeps the order of the phases in every pixel.
4. The thickness (intensity) map: a wedge of random direction and weight
   plus a smooth random field, mean 1, spanning +/- ``thickness_variation``.
5. The drift map, zero at the first scanned pixel, scaled so that its largest
   magnitude is ``drift_channels`` and rounded to 1/50 channel: a ramp
   (mostly along the slow scan) plus a smooth field, or a step at a random
   row plus a small ramp.
6. Artefacts, when on: X-ray spikes (1 + Poisson(pixels / 400) single
   channels, 5 to 50 times the pixel's maximum); with probability 1/2 a hot
   pixel (a flat offset) or, equally likely, a dead pixel (no counts); with
   probability 0.4 a bad channel (an offset on one channel in every pixel).
7. Poisson noise; then, with a gain, the gain and the read noise.

Physics
-------
A phase's single-scattering spectrum is, on a fine energy grid, a power-law
background (HyperSpy's ``PowerLaw`` component, the background of eXSpy's
EELS models) plus, for each edge of its elements, the hydrogenic
:class:`exspy.components.EELSCLEdge` cross-section (K and L2,3 shells, for
the scene's beam energy and angles) weighted by the element's atomic
fraction and moved by the compound's chemical shift. The Sr,
Ba, La and Ce M edges and the Al L2,3 edge, outside the hydrogenic model, are
:class:`exspy.components.EELSArctan` steps decaying as E^-3. The near-edge
structure these models lack (3d white lines with their crystal-field
splitting, 4f white lines, pi* and sigma* peaks, excitons) is added as
compound-specific peaks, Lorentzian below 2.5 eV FWHM and Gaussian above,
with heights in units of the edge jump. With plural scattering, a pixel of
thickness t (``t_lambda`` times its intensity) sees
``exp(-t) sum_m t^m / m!`` times the m-fold convolution of the spectrum with
the phase's unit-area Drude plasmon
(:class:`exspy.components.VolumePlasmonDrude`). Every spectrum is convolved
with the Gaussian resolution and integrated over the channels.

Ground truth, and how the data depart from it
---------------------------------------------
``GroundTruth.endmembers`` are the phases' channel counts on the nominal
(undrifted) axis at the mean thickness ``t_lambda``, scaled together so that
``noiseless = intensity * (abundances @ endmembers)`` holds ``dose`` counts
per spectrum on average, then multiplied by the gain. The data are
``gain * Poisson(clean + artefacts) + read noise``, where ``clean`` departs
from ``noiseless / gain`` only by the drift (a pixel with drift d channels
is shifted by d channels towards higher energy) and, with plural
scattering, by the pixel's thickness departing from the mean.
``GroundTruth.artefacts`` holds ``gain * artefacts``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, signal, special

from hs_aeunmix.datasets._common import (
    GroundTruth,
    _smooth_random_field,
    checked_override,
    log_uniform_at,
    scene_range,
    scene_rng,
)
from hs_aeunmix.datasets._stem_eels_compounds import (
    _EDGE_LABELS,
    _STEP_EDGES,
    COMPOUNDS,
    Peaks,
    _composition,
    _Compound,
    _edge_onsets,
    _exspy,
    _onset,
)
from hs_aeunmix.datasets._stem_eels_structures import (
    STRUCTURES,
    _abundances,
    _coordinates,
    _rotated,
)

Rng = np.random.Generator
Shape = tuple[int, int]
Params = dict[str, Any]

_ENTROPY = 0x3A61_9C0E_55D2_47B1_8E06_F3C4_2B97_D15A
_SPLITS = {"development": 0, "held_out": 1}
_BEAM_ENERGIES = (60.0, 80.0, 100.0, 120.0, 200.0, 300.0)
_MIN_START = 60.0  # eV; lower, the low-loss region, not a power law, rules.
_DRIFT_STEP = 1 / 50  # channels
_MIN_ANGLE = 0.02  # rad, between any two endmembers


@dataclass(frozen=True)
class StemEELSDescription:
    """What was drawn for one :func:`stem_eels_scene`.

    Attributes
    ----------
    generator, split, index, modality : str, str, int, str
        ``"stem_eels"``, the split, the scene index and ``"eels"``.
    subgroups : tuple of str
        ``"pure_pixels"`` or ``"no_pure_pixels"``, then those that apply of
        ``"intensity_varying"`` (thickness variation >= 10 %), ``"low_dose"``
        (dose < 300), ``"drift"`` (largest drift >= 0.5 channel) and
        ``"artefacts"``.
    n_endmembers, shape, n_channels : int, tuple of int, int
        Number of phases, (ny, nx) and number of channels.
    energy_offset, dispersion : float
        Energy loss of the first channel and channel width, eV.
    dose : float
        Mean total counts (electrons) per noiseless spectrum.
    drift_channels, drift_kind : float, str
        Largest magnitude of the applied drift (channels), and ``"none"``,
        ``"ramp"`` or ``"step"``.
    phases, compositions, edges : tuple of str
        Phase names and formulas, in endmember order, and the phases' edges
        whose onset is inside the window.
    structure, pure_pixels, max_fraction : str, bool, float
        One of :data:`STRUCTURES`, whether every phase has pure pixels, and
        the largest fraction of any phase in any pixel.
    thickness_variation, t_lambda : float
        Relative amplitude of the thickness (intensity) map, and mean
        t/lambda of plural scattering (0: none).
    beam_energy, convergence_angle, collection_angle : float
        kV, mrad, mrad.
    resolution_fwhm, pixel_size : float
        Energy resolution (eV) and scan step (nm).
    gain, read_noise : float
        ADU per electron, and the read noise's standard deviation (ADU).
    artefacts : tuple of str
        Those present of ``"xray_spikes"``, ``"hot_pixel"``,
        ``"dead_pixel"`` and ``"bad_channel"``.
    drift_map : numpy.ndarray
        Applied drift of every pixel in channels, shape (ny, nx).
    """

    generator: str
    split: str
    index: int
    modality: str
    subgroups: tuple[str, ...]
    n_endmembers: int
    shape: Shape
    n_channels: int
    energy_offset: float
    dispersion: float
    dose: float
    drift_channels: float
    drift_kind: str
    phases: tuple[str, ...]
    compositions: tuple[str, ...]
    edges: tuple[str, ...]
    structure: str
    pure_pixels: bool
    max_fraction: float
    thickness_variation: float
    t_lambda: float
    beam_energy: float
    convergence_angle: float
    collection_angle: float
    resolution_fwhm: float
    pixel_size: float
    gain: float
    read_noise: float
    artefacts: tuple[str, ...]
    drift_map: np.ndarray = field(repr=False, compare=False)

    def summary(self) -> str:
        """One line naming the scene and its main parameters."""
        end = self.energy_offset + self.n_channels * self.dispersion
        return (
            f"stem_eels {self.split}#{self.index}: {self.n_endmembers} phases "
            f"({', '.join(self.phases)}), {self.structure}, "
            f"{self.shape[0]}x{self.shape[1]}x{self.n_channels} "
            f"{self.energy_offset:.0f}-{end:.0f} eV, dose {self.dose:.0f}, "
            f"drift {self.drift_channels:.2f} ch, t/lambda {self.t_lambda:.2f} "
            f"[{', '.join(self.subgroups)}]"
        )


# --------------------------------------------------------------------------
# Top-level parameters and overrides
# --------------------------------------------------------------------------

# name -> (kind, lower bound, upper bound)
_OVERRIDABLE: dict[str, tuple[str, float, float]] = {
    "n_endmembers": ("integer", 2, 6),
    "shape": ("shape", 24, 256),
    "n_channels": ("integer", 64, 4096),
    "dispersion": ("number", 0.01, 2.0),
    "dose": ("number", 1.0, 1e7),
    "drift_channels": ("number", 0.0, 10.0),
    "pure_pixels": ("flag", 0, 1),
    "structure": ("choice", 0, 0),
    "thickness_variation": ("number", 0.0, 0.5),
    "t_lambda": ("number", 0.0, 1.5),
    "artefacts": ("flag", 0, 1),
    "beam_energy": ("number", 60.0, 300.0),
}


def _checked(name: str, value: Any) -> Any:
    """``value`` of override ``name``, or a ValueError stating what is allowed."""
    return checked_override(name, value, *_OVERRIDABLE[name], choices=STRUCTURES)


def _top_level(rng: Rng, overrides: dict[str, Any]) -> Params:
    """Draw the block of uniforms, map it to parameters, apply overrides."""
    unknown = sorted(set(overrides) - set(_OVERRIDABLE))
    if unknown:
        raise TypeError(
            f"Unknown override(s) {unknown}; the parameters that can be set are "
            f"{sorted(_OVERRIDABLE)}."
        )
    given = {name: _checked(name, value) for name, value in overrides.items()}
    u = rng.random(24)
    p: Params = {
        "n_endmembers": 2 + min(int(u[0] * 5), 4),
        "shape": (32 + min(int(u[1] * 49), 48), 32 + min(int(u[2] * 49), 48)),
        "n_channels": round(log_uniform_at(u[3], 150, 600)),
    }
    p["n_channels"] = given.get("n_channels", p["n_channels"])
    p["dispersion"] = log_uniform_at(u[4], max(0.05, 40 / p["n_channels"]), 1.0)
    p["dose"] = log_uniform_at(u[5], 10.0, 20000.0)
    p["drift_channels"] = 0.0 if u[6] < 1 / 3 else 3.0 * u[7]
    p["pure_pixels"] = bool(u[8] < 0.5)
    p["structure"] = STRUCTURES[min(int(u[9] * 6), 5)]
    p["thickness_variation"] = 0.0 if u[10] < 0.25 else 0.02 + 0.38 * u[11]
    p["t_lambda"] = 0.2 + 0.6 * u[13] if u[12] < 0.4 else 0.0
    p["artefacts"] = bool(u[14] < 0.3)
    p["beam_energy"] = _BEAM_ENERGIES[min(int(u[16] * 6), 5)]
    p.update(given)
    p["gain"] = log_uniform_at(u[22], 0.5, 5.0) if u[15] < 0.3 else 1.0
    p["read_noise"] = 0.5 + 2.5 * u[23] if u[15] < 0.3 else 0.0
    p["collection_angle"] = log_uniform_at(u[17], 10.0, 100.0)
    p["convergence_angle"] = 5.0 + 30.0 * u[18]
    p["resolution_fwhm"] = 0.3 + 1.2 * u[19]
    p["pixel_size"] = log_uniform_at(u[20], 0.2, 5.0)
    p["drift_kind"] = "ramp" if u[21] < 0.7 else "step"
    p["drift_kind"] = p["drift_kind"] if p["drift_channels"] > 0 else "none"
    if p["structure"] == "gradient" and given.get("pure_pixels"):
        if "structure" in given:
            raise ValueError(
                "pure_pixels=True is incompatible with structure='gradient' "
                "(a composition gradient has no pure pixels)."
            )
        p["structure"] = STRUCTURES[min(int((6 * u[9] - 5) * 5), 4)]
    p["pure_pixels"] = p["pure_pixels"] and p["structure"] != "gradient"
    return p


# --------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    start: float  # eV, first channel's centre
    dispersion: float  # eV per channel
    n_channels: int

    @property
    def end(self) -> float:
        return self.start + self.n_channels * self.dispersion


class _EdgeModels:
    """eXSpy components for one scene's microscope, evaluated on its grid."""

    def __init__(self, p: Params, grid: np.ndarray) -> None:
        import hyperspy.api as hs

        exspy = _exspy()
        self._p = p
        self.grid = grid
        self._cache: dict[tuple[str, float], np.ndarray] = {}
        # Expression components compile their formula when created (slow),
        # so each is made once per scene and given new parameter values.
        self._arctan = exspy.components.EELSArctan()
        self._drude = exspy.components.VolumePlasmonDrude(module="numpy")
        self._power_law = hs.model.components1D.PowerLaw()
        self._edge_class = exspy.components.EELSCLEdge
        o_k = _onset("O_K")
        self._o_k_jump = float(self._hydrogenic("O_K", o_k, np.array([o_k + 10.0]))[0])

    def _hydrogenic(self, shell: str, onset: float, energy: np.ndarray) -> np.ndarray:
        edge = self._edge_class(shell, GOS="hydrogenic")
        edge.set_microscope_parameters(
            E0=self._p["beam_energy"],
            alpha=self._p["convergence_angle"],
            beta=self._p["collection_angle"],
            energy_scale=self.grid[1] - self.grid[0],
        )
        edge.onset_energy.value = onset
        return edge.function(energy)

    def cross_section(self, shell: str, onset: float) -> np.ndarray:
        """Edge ``shell`` with its onset at ``onset`` (eV), per atom."""
        key = (shell, onset)
        if key not in self._cache:
            if shell in _STEP_EDGES:
                self._cache[key] = self._step_edge(shell, onset)
            else:
                self._cache[key] = self._hydrogenic(shell, onset, self.grid)
        return self._cache[key]

    def _step_edge(self, shell: str, onset: float) -> np.ndarray:
        _, delay, width, height = _STEP_EDGES[shell]
        centre = onset + delay
        jump = height * self._o_k_jump * (_onset("O_K") / onset) ** 2
        self._arctan.A.value = jump / 2
        self._arctan.k.value = 1 / width
        self._arctan.x0.value = centre
        # The arctan's slow tail below the centre is cut at the onset, and
        # above the centre the continuum decays like a core-loss edge's.
        cut = special.ndtr((self.grid - onset) / 0.5)
        decay = (np.maximum(self.grid, centre) / centre) ** -3.0
        return self._arctan.function(self.grid) * cut * decay

    def power_law(self, value: float, energy: float, r: float) -> np.ndarray:
        """Background A E^-r equal to ``value`` at ``energy``."""
        self._power_law.r.value = r
        self._power_law.A.value = value * energy**r
        return self._power_law.function(self.grid)

    def plasmon(self, energy: float) -> np.ndarray:
        """Unit-sum Drude single-scattering distribution, on the grid step."""
        step = self.grid[1] - self.grid[0]
        loss = np.arange(0.0, min(8 * energy, self.grid[-1] - self.grid[0]), step)
        self._drude.plasmon_energy.value = energy
        self._drude.fwhm.value = 0.3 * energy
        kernel = self._drude.function(loss)
        return kernel / kernel.sum()


def _peaks(grid: np.ndarray, onset: float, peaks: Peaks) -> np.ndarray:
    """Lifetime-broadened (Lorentzian) white lines and pi* peaks below 2.5 eV
    FWHM, Gaussian sigma* resonances above, each of height ``height``."""
    total = np.zeros_like(grid)
    for offset, fwhm, height in peaks:
        x = (grid - onset - offset) / (fwhm / 2)
        total += height * (
            1 / (1 + x**2) if fwhm < 2.5 else np.exp(-math.log(2) * x**2)
        )
    return total


def _core_loss(models: _EdgeModels, compound: _Compound) -> np.ndarray:
    """Edges and near-edge structure of ``compound`` per atom."""
    grid = models.grid
    atoms = _composition(compound.formula)
    core = np.zeros_like(grid)
    for shell, onset in _edge_onsets(compound).items():
        if onset > grid[-1]:
            continue
        sigma = models.cross_section(shell, onset)
        after = (grid >= onset + 5) & (grid <= onset + 30)
        # An edge at the very end of the grid: its jump is its largest value.
        jump = sigma[after].mean() if after.any() else sigma.max()
        fine = jump * _peaks(grid, onset, compound.edges.get(shell, (0.0, ()))[1])
        core += atoms[shell.split("_")[0]] / sum(atoms.values()) * (sigma + fine)
    return core


def _n_orders(t_max: float) -> int:
    """Number of scattering orders whose Poisson weights leave < 1e-5 out."""
    m = 1
    while t_max > 0 and special.pdtrc(m - 1, t_max) > 1e-5:
        m += 1
    return m


def _poisson_weights(t: np.ndarray, n_orders: int) -> np.ndarray:
    m = np.arange(n_orders)
    return np.exp(-t[..., None]) * t[..., None] ** m / special.factorial(m)


def _channel_counts(
    bases: np.ndarray, grid: np.ndarray, window: _Window, shifts: np.ndarray
) -> np.ndarray:
    """Counts of every basis spectrum (B, G) in every channel, for every
    shift (channels, positive to higher energy): an array (S, B, C)."""
    step = grid[1] - grid[0]
    trapezoids = (bases[:, 1:] + bases[:, :-1]) * (step / 2)
    cumulative = np.concatenate([np.zeros((len(bases), 1)), trapezoids.cumsum(1)], 1)
    edges = window.start + (np.arange(window.n_channels + 1) - 0.5) * window.dispersion
    position = (edges - shifts[:, None] * window.dispersion - grid[0]) / step
    index = np.clip(np.floor(position).astype(int), 0, grid.size - 2)
    weight = position - index
    values = cumulative[:, index] * (1 - weight) + cumulative[:, index + 1] * weight
    return np.diff(values, axis=-1).transpose(1, 0, 2)


def _phase_bases(
    rng: Rng, p: Params, phases: list[_Compound], window: _Window, n_orders: int
) -> tuple[np.ndarray, np.ndarray]:
    """A fine grid, and every phase's resolution-broadened scattering orders
    on it, an array (n_phases, n_orders, G)."""
    step = min(window.dispersion, p["resolution_fwhm"]) / 6
    pad = (p["drift_channels"] + 2) * window.dispersion + 4 * p["resolution_fwhm"]
    # Plural scattering brings counts up from below the window.
    below = pad + (120.0 if p["t_lambda"] > 0 else 0.0)
    grid = np.arange(
        max(window.start - below, 0.6 * window.start), window.end + pad, step
    )
    models = _EdgeModels(p, grid)
    cores = [_core_loss(models, compound) for compound in phases]
    inside = (grid >= window.start) & (grid <= window.end)
    level = float(np.mean([core[inside].max() for core in cores]))
    r0 = rng.uniform(2.5, 4.0)
    sigma = p["resolution_fwhm"] / (2 * math.sqrt(2 * math.log(2))) / step
    bases = []
    for compound, core in zip(phases, cores, strict=True):
        r = float(np.clip(r0 + rng.uniform(-0.4, 0.4), 2.0, 4.5))
        background = models.power_law(
            log_uniform_at(rng.random(), 0.3, 3.0) * level, window.start, r
        )
        orders = [log_uniform_at(rng.random(), 0.7, 1.4) * (core + background)]
        kernel = models.plasmon(compound.plasmon)
        for _ in range(n_orders - 1):
            orders.append(signal.fftconvolve(orders[-1], kernel)[: grid.size])
        bases.append(ndimage.gaussian_filter1d(np.stack(orders), sigma, mode="nearest"))
    return grid, np.stack(bases)


def _nominal_endmembers(
    bases: np.ndarray, grid: np.ndarray, window: _Window, t_lambda: float
) -> np.ndarray:
    """Undrifted channel counts of every phase at the mean thickness."""
    n, n_orders, _ = bases.shape
    counts = _channel_counts(bases.reshape(n * n_orders, -1), grid, window, np.zeros(1))
    weights = _poisson_weights(np.array(t_lambda), n_orders)
    return np.einsum("m,kmc->kc", weights, counts[0].reshape(n, n_orders, -1))


def _draw_phases(
    rng: Rng, p: Params
) -> tuple[list[_Compound], _Window, np.ndarray, np.ndarray]:
    """Phases, window, grid and bases with pairwise distinct endmembers."""
    n = p["n_endmembers"]
    width = p["n_channels"] * p["dispersion"]
    pairs = [(c, shell) for c in COMPOUNDS for shell in _edge_onsets(c)]
    n_orders = _n_orders(p["t_lambda"] * (1 + p["thickness_variation"]))
    for _ in range(100):
        candidates: list[_Compound] = []
        while len(candidates) < n - 1:
            anchor, shell = pairs[rng.integers(len(pairs))]
            start = _edge_onsets(anchor)[shell] - rng.uniform(0.15, 0.45) * width
            start = max(start, _MIN_START)
            lo, hi = start + 0.08 * width, start + 0.8 * width
            candidates = [
                c
                for c in COMPOUNDS
                if any(lo <= e <= hi for e in _edge_onsets(c).values())
            ]
        order = rng.permutation(len(candidates))
        phases = [candidates[i] for i in order[: n - 1]]
        spare = [candidates[i] for i in order[n - 1 :]]
        if not spare or rng.random() >= 0.75:
            spare = [c for c in COMPOUNDS if c not in phases]
        phases.append(spare[rng.integers(len(spare))])
        window = _Window(start, p["dispersion"], p["n_channels"])
        grid, bases = _phase_bases(rng, p, phases, window, n_orders)
        unit = _nominal_endmembers(bases, grid, window, p["t_lambda"])
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        angles = np.arccos(np.clip(unit @ unit.T, -1.0, 1.0)) + np.eye(n)
        if angles.min() >= _MIN_ANGLE:
            return phases, window, grid, bases
    raise RuntimeError("No set of phases with distinct spectra was found.")


# --------------------------------------------------------------------------
# Thickness, drift, artefacts
# --------------------------------------------------------------------------


def _thickness(rng: Rng, shape: Shape, variation: float) -> np.ndarray | None:
    """Relative thickness, a wedge plus a smooth field: mean 1, +/- variation."""
    if variation == 0:
        return None
    u, _ = _rotated(shape, rng.uniform(0, 2 * math.pi))
    field = _smooth_random_field(rng, shape, rng.uniform(4.0, 12.0))
    f = rng.uniform(0, 1) * u / np.abs(u).max() + field / np.abs(field).max()
    f -= f.mean()
    return 1 + variation * f / np.abs(f).max()


def _drift(rng: Rng, shape: Shape, largest: float, kind: str) -> np.ndarray:
    """Energy drift of each pixel in channels, zero at the first pixel."""
    if kind == "none":
        return np.zeros(shape)
    yy, xx = _coordinates(shape)
    if kind == "ramp":
        # High-tension or spectrometer drift: slow, mostly along the slow scan
        # direction, with some wander.
        gy, gx = rng.normal(size=2)
        f = gy * yy / shape[0] + 0.3 * gx * xx / shape[1]
        f = f + 0.5 * rng.random() * _smooth_random_field(
            rng, shape, rng.uniform(6, 15)
        )
    else:
        # The energy offset jumps between two scan rows.
        row = rng.integers(shape[0] // 5, 4 * shape[0] // 5)
        f = (
            rng.choice([-1.0, 1.0]) * (yy >= row)
            + rng.uniform(-0.3, 0.3) * yy / shape[0]
        )
    f = f - f[0, 0]
    return np.round(largest * f / np.abs(f).max() / _DRIFT_STEP) * _DRIFT_STEP


def _artefacts(rng: Rng, clean: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Additive artefacts, in counts, for clean data (pixels, channels)."""
    n_pixels, n_channels = clean.shape
    added = np.zeros_like(clean)
    n_spikes = 1 + int(rng.poisson(n_pixels / 400))
    pixels = rng.integers(0, n_pixels, n_spikes)
    channels = rng.integers(0, n_channels, n_spikes)
    np.add.at(
        added, (pixels, channels), rng.uniform(5, 50, n_spikes) * clean[pixels].max(-1)
    )
    kinds = ["xray_spikes"]
    if rng.random() < 0.5:
        pixel = rng.integers(n_pixels)
        if rng.random() < 0.5:
            added[pixel] += rng.uniform(3, 20) * clean.mean()
            kinds.append("hot_pixel")
        else:
            added[pixel] = -clean[pixel]
            kinds.append("dead_pixel")
    if rng.random() < 0.4:
        channel = rng.integers(n_channels)
        added[:, channel] += rng.uniform(0.5, 3) * clean[:, channel].mean()
        kinds.append("bad_channel")
    return added, tuple(kinds)


def _drifted(
    bases: np.ndarray,
    grid: np.ndarray,
    window: _Window,
    coefficients: np.ndarray,
    drift: np.ndarray,
) -> np.ndarray:
    """Pixels' ``coefficients`` (pixels, B) times the bases, shifted by the
    pixels' drift: pixels sharing a drift share one set of shifted channel
    counts, so the work grows with the distinct drifts, not the pixels."""
    steps = np.round(drift.ravel() / _DRIFT_STEP).astype(int)
    values, group = np.unique(steps, return_inverse=True)
    shifted = _channel_counts(
        bases.reshape(-1, grid.size), grid, window, values * _DRIFT_STEP
    )
    clean = np.empty((len(coefficients), window.n_channels))
    for g, counts in enumerate(shifted):
        members = group == g
        clean[members] = coefficients[members] @ counts
    return clean


# --------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------


def _signal(data: np.ndarray, p: Params, window: _Window, title: str) -> Any:
    navigation = {"units": "nm", "scale": p["pixel_size"], "offset": 0.0}
    energy = {
        "name": "Energy loss",
        "units": "eV",
        "scale": window.dispersion,
        "offset": window.start,
    }
    s = _exspy().signals.EELSSpectrum(
        data,
        axes=[
            {"size": data.shape[0], "name": "y", **navigation},
            {"size": data.shape[1], "name": "x", **navigation},
            {"size": data.shape[2], **energy},
        ],
    )
    s.metadata.General.title = title
    s.metadata.Signal.signal_type = "EELS"
    s.set_microscope_parameters(
        beam_energy=p["beam_energy"],
        convergence_angle=p["convergence_angle"],
        collection_angle=p["collection_angle"],
    )
    if p["gain"] != 1.0:
        variance = "Signal.Noise_properties.Variance_linear_model"
        s.metadata.set_item(f"{variance}.gain_factor", p["gain"])
        s.metadata.set_item(f"{variance}.gain_offset", 0.0)
    return s


# Top-level parameters that the description reports as drawn.
_DESCRIBED = (
    "dose", "drift_kind", "structure", "pure_pixels", "thickness_variation",
    "t_lambda", "beam_energy", "convergence_angle", "collection_angle",
    "resolution_fwhm", "pixel_size", "gain", "read_noise",
)  # fmt: skip


def stem_eels_scene(
    index: int, split: str = "development", **overrides: Any
) -> tuple[Any, GroundTruth, StemEELSDescription]:
    """Scene ``index`` of one split of the STEM-EELS family.

    The module docstring states what is drawn, in which order, and how the
    data depart from the ground truth.

    Parameters
    ----------
    index : int
        Scene number, >= 0.
    split : {"development", "held_out"}
        Which half of the family; the halves never share a random stream.
    **overrides
        Values for top-level parameters, which are otherwise drawn:
        ``n_endmembers`` (integer in [2, 6]), ``shape`` (pair of integers in
        [24, 256]), ``n_channels`` (integer in [64, 4096]), ``dispersion``
        ([0.01, 2] eV), ``dose`` ([1, 1e7] counts), ``drift_channels``
        ([0, 10]), ``pure_pixels`` (bool), ``structure`` (one of
        :data:`STRUCTURES`), ``thickness_variation`` ([0, 0.5]),
        ``t_lambda`` ([0, 1.5]; 0: no plural scattering), ``artefacts``
        (bool) and ``beam_energy`` ([60, 300] kV). The others stay as drawn.

    Returns
    -------
    signal : exspy.signals.EELSSpectrum
        Counts (ADU with a gain), shape (ny, nx, n_channels).
    truth : GroundTruth
        Endmembers, abundances, intensity (thickness) map and artefacts.
    description : StemEELSDescription
        What was drawn.

    Raises
    ------
    ValueError
        For a bad ``index``, ``split`` or override value.
    TypeError
        For an override that is not a top-level parameter.
    """
    rng = scene_rng(_ENTROPY, split, index, _SPLITS)
    p = _top_level(rng, overrides)
    phases, window, grid, bases = _draw_phases(rng, p)
    abundances, max_fraction = _abundances(rng, p)
    intensity = _thickness(rng, p["shape"], p["thickness_variation"])
    drift = _drift(rng, p["shape"], p["drift_channels"], p["drift_kind"])

    relative = np.ones(p["shape"]) if intensity is None else intensity
    endmembers = _nominal_endmembers(bases, grid, window, p["t_lambda"])
    scale = p["dose"] / (relative * (abundances @ endmembers).sum(-1)).mean()
    # Each pixel scatters at its own thickness, the endmembers at the mean.
    orders = _poisson_weights(p["t_lambda"] * relative, bases.shape[1])
    coefficients = (
        scale * relative[..., None, None] * abundances[..., None] * orders[..., None, :]
    )
    clean = _drifted(bases, grid, window, coefficients.reshape(drift.size, -1), drift)
    artefacts, kinds = np.zeros_like(clean), ()
    if p["artefacts"]:
        artefacts, kinds = _artefacts(rng, clean)
    data = rng.poisson(np.clip(clean + artefacts, 0.0, None)).astype(float)
    if p["gain"] != 1.0:
        data = p["gain"] * data + rng.normal(0.0, p["read_noise"], data.shape)

    ny, nx = p["shape"]
    endmembers *= scale * p["gain"]
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=tuple(c.name for c in phases),
        noiseless=relative[..., None] * (abundances @ endmembers),
        intensity=intensity,
        artefacts=p["gain"] * artefacts.reshape(ny, nx, -1) if kinds else None,
    )
    largest_drift = float(np.abs(drift).max())
    purity = "pure_pixels" if p["pure_pixels"] else "no_pure_pixels"
    tags = (
        ("intensity_varying", p["thickness_variation"] >= 0.1),
        ("low_dose", p["dose"] < 300),
        ("drift", largest_drift >= 0.5),
        ("artefacts", bool(kinds)),
    )
    onsets = sorted(
        (onset, f"{shell.split('_')[0]} {_EDGE_LABELS[shell.split('_')[1]]}")
        for c in phases
        for shell, onset in _edge_onsets(c).items()
        if window.start <= onset <= window.end
    )
    description = StemEELSDescription(
        generator="stem_eels",
        split=split,
        index=int(index),
        modality="eels",
        subgroups=(purity, *(tag for tag, applies in tags if applies)),
        n_endmembers=len(phases),
        shape=(ny, nx),
        n_channels=window.n_channels,
        energy_offset=window.start,
        dispersion=window.dispersion,
        drift_channels=largest_drift,
        phases=truth.names,
        compositions=tuple(c.formula for c in phases),
        edges=tuple(dict.fromkeys(label for _, label in onsets)),
        max_fraction=max_fraction,
        artefacts=kinds,
        drift_map=drift,
        **{k: p[k] for k in _DESCRIBED},
    )
    title = f"STEM-EELS {split} scene {index}: {' + '.join(truth.names)}"
    return _signal(data.reshape(ny, nx, -1), p, window, title), truth, description


def stem_eels_family(
    split: str = "development", n_scenes: int = 30, first: int = 0
) -> Iterator[tuple[Any, GroundTruth, StemEELSDescription]]:
    """The scenes of ``split`` from ``first`` to ``first + n_scenes - 1``.

    The arguments are checked at once; each scene is generated when the
    iterator reaches it.

    Parameters
    ----------
    split : {"development", "held_out"}
        Which half of the family.
    n_scenes : int
        Number of scenes, >= 0.
    first : int
        First index, >= 0.

    Returns
    -------
    iterator of tuple
        ``(signal, truth, description)`` of each scene, in index order.
    """
    return scene_range(stem_eels_scene, split, n_scenes, first, _SPLITS)
