"""A series of scans unmixed with one model: here and on a dask LocalCluster."""

from __future__ import annotations

import hyperspy.api as hs
import numpy as np
import pytest
from conftest import make_mixture, to_signal, train_through_hyperspy

import hs_aeunmix
from hs_aeunmix_cli import main

N_SCANS = 4


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """A model trained on one scan and four later scans of the same sample."""
    folder = tmp_path_factory.mktemp("series")
    model = train_through_hyperspy(to_signal(make_mixture(shape=(16, 16))))
    model_file = model.save(folder / "first.aeunmix")
    scans = []
    for index in range(N_SCANS):
        path = folder / "day" / f"scan{index}.hspy"
        path.parent.mkdir(exist_ok=True)
        to_signal(make_mixture(shape=(16, 12), counts=100, seed=10 + index)).save(path)
        scans.append(path)
    return model, model_file, scans


def _loadings(path):
    return hs.load(path).learning_results.loadings


def test_series_results_equal_unmixing_each_scan(series, tmp_path):
    model, model_file, scans = series
    reports = hs_aeunmix.apply_series(
        model_file, scans, tmp_path, lazy=False, show_progressbar=False
    )
    assert [report.source for report in reports] == scans
    assert not any(report.failed for report in reports)
    for scan, report in zip(scans, reports, strict=True):
        assert report.written[0] == tmp_path / f"{scan.stem}_ae.hspy"
        assert all(path.is_file() for path in report.written)
        signal = hs.load(scan)
        signal.decomposition(algorithm="ae", model=model, print_info=False)
        np.testing.assert_array_equal(
            _loadings(report.written[0]), signal.learning_results.loadings
        )


def test_a_failing_scan_does_not_stop_the_series(series, tmp_path):
    model, _, scans = series
    broken = tmp_path / "broken.hspy"
    broken.write_bytes(b"not an HDF5 file")
    output = tmp_path / "out"
    reports = hs_aeunmix.apply_series(
        model, [scans[0], broken, scans[1]], output, show_progressbar=False
    )
    assert [report.failed for report in reports] == [False, True, False]
    assert "broken.hspy" in reports[1].summary
    assert not reports[1].written
    assert (output / "scan1_ae.hspy").is_file()


def test_outputs_checked_before_any_scan_is_read(series, tmp_path):
    _, model_file, scans = series
    (tmp_path / "scan1_ae.hspy").write_bytes(b"earlier results")
    with pytest.raises(ValueError, match=r"scan1_ae\.hspy.*--overwrite"):
        hs_aeunmix.apply_series(model_file, scans, tmp_path, show_progressbar=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scan1_ae.hspy"]


@pytest.mark.parametrize("given_as", ["path", "signal", "lazy signal"])
def test_results_never_written_over_the_model_they_read(series, tmp_path, given_as):
    # The results of a first run serve as the model of a second run over the
    # same scan, into the same folder: even with overwrite, the scan's new
    # results must not replace the file the model is read from.
    _, model_file, scans = series
    hs_aeunmix.apply_series(
        model_file, scans[:1], tmp_path, lazy=False, show_progressbar=False
    )
    results = tmp_path / "scan0_ae.hspy"
    before = results.read_bytes()
    model = {
        "path": lambda: results,
        "signal": lambda: hs.load(results),
        "lazy signal": lambda: hs.load(results, lazy=True),
    }[given_as]()
    with pytest.raises(ValueError, match=r"scan0_ae\.hspy is an input of this run"):
        hs_aeunmix.apply_series(
            model, scans[:2], tmp_path, overwrite=True, show_progressbar=False
        )
    assert results.read_bytes() == before
    assert not (tmp_path / "scan1_ae.hspy").exists()  # nothing was unmixed


def test_unfitted_model_refused(series, tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        hs_aeunmix.apply_series(hs_aeunmix.AEUnmix(n_components=3), series[2], tmp_path)


def test_local_cluster_gives_the_results_of_this_process(series, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, model_file, scans = series
    here = hs_aeunmix.apply_series(
        model_file, scans, tmp_path / "here", lazy=False, show_progressbar=False
    )
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_cluster = hs_aeunmix.apply_series(
            model_file,
            scans,
            tmp_path / "cluster",
            client=client,
            lazy=True,
            show_progressbar=False,
        )
        workers = set(client.run(lambda: 1))
    assert len(workers) == 2
    for ours, theirs in zip(here, on_cluster, strict=True):
        assert theirs.source == ours.source
        assert not theirs.failed
        np.testing.assert_allclose(
            _loadings(theirs.written[0]), _loadings(ours.written[0]), atol=1e-6
        )


def test_cli_workers_option(series, tmp_path, capfd):
    pytest.importorskip("distributed")
    _, model_file, scans = series
    arguments = [str(model_file), *map(str, scans[:2]), "-o", str(tmp_path)]
    assert main(["apply", *arguments, "--workers", "2", "--no-progressbar"]) == 0
    assert {path.name for path in tmp_path.glob("*_ae.hspy")} == {
        "scan0_ae.hspy",
        "scan1_ae.hspy",
    }
    assert capfd.readouterr().out.count("unmixed in") == 2
