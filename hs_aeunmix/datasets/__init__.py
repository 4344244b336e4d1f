"""Synthetic spectrum images with a known ground truth.

The generators in this package build spectrum images that follow the linear
mixing model exactly (before noise), so that unmixing results can be scored
against the true endmembers and abundances with :mod:`hs_aeunmix.metrics`.

* :func:`eels_chequerboard` reproduces the synthetic STEM-EELS protocol of Brun
  et al. (Eur. Phys. J. Appl. Phys. 99, 28, 2024): chequerboard maps made of
  pure blocks, blurred by a mean filter so that pixels mix, linear mixing and
  Poisson noise.
* :func:`eels_no_pure_pixel` uses the same endmembers on a multilayer-like
  scene in which no pixel is pure and the specimen thickness varies, the
  situation in which the paper found that the chequerboard benchmark was too
  optimistic.
* :func:`raman_scene` generates Raman spectrum images of biomolecule mixtures
  on the abundance scenes of Georgiev et al. (PNAS 121, e2407439121, 2024),
  plus a cell-like scene.
* :func:`random_scene`, :func:`scene_family` and :func:`describe_scene` draw
  a seeded, randomised family of EELS, Raman and generic scenes (random
  endmember libraries, spatial structures, pure pixels or not, intensity
  variation, noise level and artefacts), described by a
  :class:`SceneDescription`, with disjoint development and held-out halves
  for choosing defaults and reporting them.

The EELS endmembers are computed from physics: a power-law background
:math:`A E^{-r}` and hydrogenic core-loss cross-sections evaluated with
:class:`exspy.components.EELSCLEdge` (which needs no downloaded database),
with near-edge peaks (white lines, pi* peaks) added where the real spectra
have them. The Raman endmembers are sums of Lorentzian bands at literature
positions. Every random draw goes through ``numpy.random.default_rng``, so a
given ``random_state`` always produces the same dataset.

* :func:`eds_scene` and :func:`eds_family` draw EDS (energy-dispersive
  X-ray) maps of real compounds in an SEM or a STEM, from eXSpy's X-ray line
  database, a Kramers continuum and a detector model, described by an
  :class:`EDSDescription`.

* :func:`eels_series` draws a sample series: scans of one specimen with
  their own phase fractions, dose and energy offset, one phase absent from
  some (for :func:`hs_aeunmix.decompose_series`).

* :func:`real_scan` gives measured spectrum images (EELS, Raman) from public
  repositories, fetched once with pooch against a known hash, or read from a
  local copy.
"""

from hs_aeunmix.datasets._common import GroundTruth
from hs_aeunmix.datasets._eds import EDSDescription, eds_family, eds_scene
from hs_aeunmix.datasets._family import (
    SceneDescription,
    describe_scene,
    random_scene,
    scene_family,
)
from hs_aeunmix.datasets._generators import (
    eels_chequerboard,
    eels_no_pure_pixel,
    raman_scene,
)
from hs_aeunmix.datasets._raman_compounds import (
    RamanCompoundDescription,
    raman_compound_family,
    raman_compound_scene,
)
from hs_aeunmix.datasets._real import REAL_SCANS, real_scan, real_scan_path
from hs_aeunmix.datasets._series import eels_series
from hs_aeunmix.datasets._stem_eels import (
    StemEELSDescription,
    stem_eels_family,
    stem_eels_scene,
)

__all__ = [
    "REAL_SCANS",
    "EDSDescription",
    "GroundTruth",
    "RamanCompoundDescription",
    "SceneDescription",
    "StemEELSDescription",
    "describe_scene",
    "eds_family",
    "eds_scene",
    "eels_chequerboard",
    "eels_no_pure_pixel",
    "eels_series",
    "raman_compound_family",
    "raman_compound_scene",
    "raman_scene",
    "random_scene",
    "real_scan",
    "real_scan_path",
    "scene_family",
    "stem_eels_family",
    "stem_eels_scene",
]
