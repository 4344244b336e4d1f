"""Endmember descriptions: EELS edges, Raman bands, duplicates and collapse."""

from __future__ import annotations

import numpy as np
import pytest

from hs_aeunmix import _edges
from hs_aeunmix._describe import (
    Band,
    EndmemberDescription,
    EndmemberWarning,
    axis_kind,
    describe_spectra,
    endmember_warnings,
    find_bands,
    short_description,
)
from hs_aeunmix._edges import Edge, find_edges

exspy = pytest.importorskip("exspy")


def hydrogenic(subshell: str, energy: np.ndarray, onset: float | None = None):
    """exspy's hydrogenic cross-section on ``energy``, its maximum scaled to 1."""
    edge = exspy.components.EELSCLEdge(subshell, GOS="hydrogenic")
    edge.set_microscope_parameters(
        E0=200, alpha=0, beta=30, energy_scale=float(energy[1] - energy[0])
    )
    if onset is not None:
        edge.onset_energy.value = onset
    values = edge.function(energy)
    return values / values.max()


def eels_spectrum(energy, edges, *, exponent=3.0, jump=0.2, counts=1e4, seed=0):
    """Counts of a power law ``E**-exponent`` plus edges whose maxima are
    ``jump`` times the background at their onset, with Poisson noise."""
    background = (energy / energy[0]) ** -exponent
    spectrum = background.copy()
    for subshell, onset, tabulated in edges:
        at_onset = background[np.searchsorted(energy, tabulated)]
        spectrum += jump * at_onset * hydrogenic(subshell, energy, onset)
    rng = np.random.default_rng(seed)
    return rng.poisson(counts * spectrum).astype(float)


def named(edges: tuple[Edge, ...]) -> dict[str, Edge]:
    return {f"{edge.element} {edge.shell}": edge for edge in edges}


def test_edges_named_on_hydrogenic_spectrum():
    energy = np.arange(480.0, 800.0, 0.5)
    spectrum = eels_spectrum(energy, [("O_K", None, 532.0), ("Fe_L3", None, 708.0)])
    edges, exponent = find_edges(spectrum, energy)
    found = named(edges)
    assert set(found) == {"O K", "Fe L3"}
    assert found["O K"].tabulated_eV == 532.0
    assert found["Fe L3"].tabulated_eV == 708.0
    for edge in edges:
        assert abs(edge.onset_eV - edge.tabulated_eV) < 2.0
        assert edge.confidence > 0.5
    assert exponent == pytest.approx(3.0, abs=0.2)


@pytest.mark.parametrize(
    ("start", "exponent"),
    [(440.0, 5.5), (451.0, 3.0)],
    ids=["steep background", "short pre-edge"],
)
def test_edge_found_on_steep_background_and_near_window_start(start, exponent):
    # Ti L2,3 at 456 eV, 10 % above a background falling as E**-5.5, or
    # 5 eV after the start of the window.
    energy = np.arange(start, 560.0, 0.25)
    spectrum = eels_spectrum(
        energy, [("Ti_L3", None, 456.0)], exponent=exponent, jump=0.1
    )
    edges, _ = find_edges(spectrum, energy)
    assert [str(edge) for edge in edges] == ["Ti L3 (456 eV)"]
    assert abs(edges[0].onset_eV - 456.0) < 2.0


def test_shifted_onset_is_named_from_the_database():
    # An Fe L3 edge 5 eV above its tabulated onset (a chemical shift): the
    # database's nearest edges, within a tolerance, still say Fe, with less
    # confidence than at the tabulated energy.
    energy = np.arange(600.0, 800.0, 0.5)
    shifted = eels_spectrum(energy, [("Fe_L3", 713.0, 713.0)])
    at_table = eels_spectrum(energy, [("Fe_L3", None, 708.0)])
    (edge,), _ = find_edges(shifted, energy)
    (reference,), _ = find_edges(at_table, energy)
    assert (edge.element, edge.shell, edge.tabulated_eV) == ("Fe", "L3", 708.0)
    assert edge.onset_eV == pytest.approx(713.0, abs=1.5)
    assert edge.confidence < reference.confidence


def test_ambiguous_onset_has_low_confidence():
    # Cu L3 and Pr M5 are both tabulated at 931 eV.
    onset = _edges.Onset(
        energy=931.0, jump=0.3, significance=50.0, exponent=3.0, gradual=False
    )
    context = _edges._Context(800.0, (931.0,), frozenset(), frozenset())
    edge = _edges._identify(onset, context)
    assert edge.element == "Cu"
    assert edge.confidence <= 0.5
    # Ti L3 at 456 eV has no other Major edge within 10 eV.
    clear = _edges._identify(
        _edges.Onset(456.0, 0.3, 50.0, 3.0, False),
        _edges._Context(400.0, (456.0,), frozenset(), frozenset()),
    )
    assert clear.element == "Ti"
    assert clear.confidence > 0.7


def test_elements_restrict_the_names_to_the_specimen():
    # Cu L3 and Pr M5 are both tabulated at 931 eV: the database alone says
    # Cu (the lighter); a specimen known to hold Pr says Pr; one holding
    # neither leaves the onset unnamed and lists it.
    energy = np.arange(850.0, 1050.0, 0.5)
    spectrum = eels_spectrum(energy, [("Cu_L3", None, 931.0)])
    assert {e.element for e in find_edges(spectrum, energy)[0]} == {"Cu"}
    restricted, _ = find_edges(spectrum, energy, elements=["Pr", "O"])
    assert {e.element for e in restricted} == {"Pr"}
    (described,) = describe_spectra(spectrum[None], energy, units="eV", elements="Fe")
    assert described.edges == ()
    assert min(abs(np.array(described.unidentified_onsets_eV) - 931.0)) < 3.0


def test_unknown_elements_refused():
    energy = np.arange(850.0, 1050.0, 0.5)
    with pytest.raises(ValueError, match=r"elements \['Xx'\] have no edges"):
        describe_spectra(np.ones((1, energy.size)), energy, units="eV", elements=["Xx"])


def test_an_onset_displaced_from_its_subshell_is_listed():
    # Two onsets only Ti L3 can name: the closer keeps the name, the other
    # is listed as unidentified instead of vanishing.
    onsets = [_edges.Onset(energy, 0.3, 50.0, 3.0, False) for energy in (455.0, 451.0)]
    edges, unknown = _edges._name_edges(onsets, 400.0, allowed=frozenset({"Ti"}))
    assert [(e.shell, e.onset_eV) for e in edges] == [("L3", 455.0)]
    assert unknown == (451.0,)


def test_kev_axis_and_signal_type_read_as_eels():
    energy = np.arange(480.0, 800.0, 0.5)
    spectrum = eels_spectrum(energy, [("O_K", None, 532.0)])
    (in_kev,) = describe_spectra(spectrum[None], energy / 1000, units="keV")
    (by_type,) = describe_spectra(spectrum[None], energy, signal_type="EELS")
    assert in_kev.kind == by_type.kind == "eels"
    assert in_kev.elements == by_type.elements == ("O",)


def test_axis_kind():
    assert axis_kind("eV") == axis_kind("keV") == "eels"
    assert axis_kind(None, "EELS") == "eels"
    assert axis_kind("cm⁻¹") == axis_kind("1/cm") == axis_kind("cm-1") == "raman"
    assert axis_kind("nm") == axis_kind(None) == "generic"


def lorentzian(shift, centre, fwhm):
    return 1.0 / (1.0 + ((shift - centre) / (fwhm / 2)) ** 2)


def test_raman_bands_found_at_known_positions():
    shift = np.arange(200.0, 1800.0, 1.0)
    bands = [(520.7, 8.0, 1.0), (1001.0, 6.0, 0.6), (1602.0, 20.0, 0.3)]
    # A fluorescence background far taller than the bands.
    spectrum = 5.0 * np.exp(-(((shift - 1200.0) / 900.0) ** 2)) + 0.5
    for centre, fwhm, height in bands:
        spectrum += height * lorentzian(shift, centre, fwhm)
    spectrum += np.random.default_rng(0).normal(0.0, 0.005, shift.size)
    found = find_bands(spectrum, shift)
    assert len(found) == 3
    for band, (centre, fwhm, height) in zip(found, bands, strict=True):
        assert band.position == pytest.approx(centre, abs=1.0)
        assert band.fwhm == pytest.approx(fwhm, rel=0.25)
        assert band.relative_height == pytest.approx(height, abs=0.1)
    (description,) = describe_spectra(spectrum[None], shift, units="cm⁻¹")
    assert description.kind == "raman"
    assert description.bands == found


def two_spectra(angle: float) -> np.ndarray:
    """Two positive spectra ``angle`` radians apart."""
    channels = np.linspace(0.0, 1.0, 200)
    first = 1.0 + np.exp(-(((channels - 0.3) / 0.05) ** 2))
    change = np.exp(-(((channels - 0.7) / 0.05) ** 2))
    change -= first * (change @ first) / (first @ first)
    second = first / np.linalg.norm(first) + np.tan(angle) * change / np.linalg.norm(
        change
    )
    return np.stack([first, 3.0 * second])


def test_duplicate_endmember_reported():
    spectra = np.vstack([two_spectra(0.005), two_spectra(0.03)[1:]])
    warnings = endmember_warnings(spectra)
    assert [(w.kind, w.endmembers) for w in warnings] == [("duplicate", (0, 1))]
    assert "n_components=2" in warnings[0].message
    # 0.03 rad: distinct EELS phases on one background are this close.
    assert endmember_warnings(two_spectra(0.03)) == []


def test_collapsed_endmember_reported():
    spectra = np.eye(3) + 0.1
    by_share = endmember_warnings(spectra, shares=np.array([0.6, 0.395, 0.005]))
    assert [(w.kind, w.endmembers) for w in by_share] == [("collapsed", (2,))]
    by_report = endmember_warnings(
        spectra, support=np.array([100, 0, 50]), max_fraction=np.array([1, 0.3, 0.6])
    )
    assert [(w.kind, w.endmembers) for w in by_report] == [("collapsed", (1,))]
    assert endmember_warnings(spectra, shares=np.array([0.4, 0.3, 0.3])) == []


def test_short_description():
    fe = Edge("Fe", "L3", 708.0, 707.2, 0.8)
    o = Edge("O", "K", 532.0, 532.4, 0.9)
    duplicate = EndmemberWarning("duplicate", (1, 2), "")
    descriptions = [
        EndmemberDescription(0, "eels", edges=(o, fe)),
        EndmemberDescription(1, "eels", warnings=(duplicate,)),
        EndmemberDescription(
            2, "raman", bands=(Band(520.0, 8.0, 1.0), Band(1001.0, 6.0, 0.5))
        ),
    ]
    assert short_description(descriptions) == (
        "0: O K (532 eV), Fe L3 (708 eV); 1: no edge (duplicate); 2: bands at 520, 1001"
    )


@pytest.fixture
def one_thread():
    """Tiny networks train far faster on one thread than on a shared pool."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_describe_endmembers_of_a_fitted_model():
    from hs_aeunmix import AEUnmix
    from hs_aeunmix._axes import SignalCalibration
    from hs_aeunmix.datasets import eels_chequerboard

    # Co L2,3, Ni L2,3 and Pt (no edge) at 700-899 eV.
    signal, _ = eels_chequerboard(
        3, shape=(16, 16), block_size=4, filter_size=3, random_state=0
    )
    X = signal.data.reshape(-1, signal.data.shape[-1])
    model = AEUnmix(
        3, max_epochs=2, init="vca", show_progressbar=False, random_state=0
    ).fit(X, signal_calibration=SignalCalibration.from_signal(signal))

    described = model.describe_endmembers(X)
    assert [d.index for d in described] == [0, 1, 2]
    assert {d.kind for d in described} == {"eels"}
    assert sorted(d.elements for d in described) == [(), ("Co",), ("Ni",)]
    assert sum(d.intensity_share for d in described) == pytest.approx(1.0)
    assert [d.support for d in described] == model.stability_.support.tolist()
    assert all(d.summary.startswith(f"{d.index}: ") for d in described)
    assert all(d.intensity_share is None for d in model.describe_endmembers())

    # Trained on a plain array: no axis, generic descriptions.
    model.signal_calibration_ = None
    assert {d.kind for d in model.describe_endmembers()} == {"generic"}
