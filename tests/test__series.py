"""A series of scans unmixed with one model: here and on a dask LocalCluster."""

from __future__ import annotations

import errno
import shutil
import types
from pathlib import Path

import hyperspy.api as hs
import numpy as np
import pytest
from _helpers import make_mixture, to_signal, train_through_hyperspy

import hs_aeunmix
from hs_aeunmix import _jobs, _series
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


# ------------------------------------------------ faults (issue 26, red team)
def _names(folder):
    return sorted(path.name for path in folder.iterdir())


def _scan_files(folder, stem):
    return [name for name in _names(folder) if name.startswith(stem)]


@pytest.mark.parametrize("failure", ["no room", "writer"])
def test_a_full_disk_fails_one_scan_and_the_series_goes_on(
    series, tmp_path, monkeypatch, failure
):
    _, model_file, scans = series
    if failure == "no room":
        # The disk has no room for the first scan, and room for the second
        # (the first's files were never written): refused before writing.
        real_usage = shutil.disk_usage
        calls = []

        def disk_usage(path):
            calls.append(path)
            usage = real_usage(path)
            free = 1_000 if len(calls) == 1 else usage.free
            return usage._replace(free=free)

        monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    else:
        # The disk fills up while the first scan's files are written, after
        # its figures (the table comes later); freed for the second.
        real_table = _jobs.write_endmember_table
        tables = []

        def full_disk(descriptions, path):
            tables.append(path)
            if len(tables) == 1:
                Path(path).write_bytes(b"endmember,summa")
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            real_table(descriptions, path)

        monkeypatch.setattr(_jobs, "write_endmember_table", full_disk)
    reports = hs_aeunmix.apply_series(
        model_file, scans[:2], tmp_path, lazy=True, show_progressbar=False
    )
    assert [report.failed for report in reports] == [True, False]
    summary = reports[0].summary
    assert "\n" not in summary
    if failure == "no room":
        assert f"{tmp_path / 'scan0_ae.hspy'}: not enough free space" in summary
        assert "needed" in summary
        assert "1 kB free" in summary
    else:
        assert f"{tmp_path / 'scan0_endmembers.csv'}: No space left" in summary
    # None of the failed scan's files, no temporary file; the next one whole.
    assert _scan_files(tmp_path, "scan0") == []
    assert not [name for name in _names(tmp_path) if name.startswith(".")]
    assert len(reports[1].written) == 4
    assert all(path.is_file() for path in reports[1].written)


def test_a_killed_worker_fails_its_scan_not_the_series(series, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    _, model_file, scans = series
    real_unmix_scan = _series.unmix_scan

    def dying_on_scan1(model_bytes, job, **options):
        # What the client sees once the scheduler has given a task up: every
        # worker that ran it died (out of memory, a segfault).
        if job.stem == "scan1":
            last = types.SimpleNamespace(address="tcp://127.0.0.1:1")
            raise distributed.KilledWorker(f"unmix_scan-{job.stem}", last, 3)
        return real_unmix_scan(model_bytes, job, **options)

    monkeypatch.setattr(_series, "unmix_scan", dying_on_scan1)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        reports = hs_aeunmix.apply_series(
            model_file, scans[:3], tmp_path, client=client, show_progressbar=False
        )
    assert [report.source for report in reports] == scans[:3]
    assert [report.failed for report in reports] == [False, True, False]
    assert str(scans[1]) in reports[1].summary
    assert "KilledWorker" in reports[1].summary
    assert _scan_files(tmp_path, "scan1") == []
    assert all(path.is_file() for path in reports[2].written)


class _WorkerDied(BaseException):
    """A task stopped where it was, as by its worker's death."""


def test_a_retried_scan_is_not_blocked_by_its_first_attempt(
    series, tmp_path, monkeypatch
):
    # The scheduler reruns a task whose worker died; the first attempt had
    # written the results file, and the rerun failed on it ("already
    # exists", without overwrite).
    _, model_file, scans = series
    [job] = _jobs.plan_jobs([scans[0]], tmp_path, with_model=False)
    data = model_file.read_bytes()

    def dies(descriptions, path):
        raise _WorkerDied

    with monkeypatch.context() as patch:
        patch.setattr(_jobs, "write_endmember_table", dies)
        with pytest.raises(_WorkerDied):
            _series.unmix_scan(data, job, lazy=False, overwrite=False)
    assert _names(tmp_path) == []
    report = _series.unmix_scan(data, job, lazy=False, overwrite=False)
    assert not report.failed, report.summary
    assert sorted(path.name for path in report.written) == _names(tmp_path)
    assert len(report.written) == 5


def test_no_progress_bars_when_asked(series, tmp_path, capfd, monkeypatch):
    # HyperSpy's lazy decomposition draws "Learn" and "Project" bars
    # whatever its preference, and the preference was left on.
    import hyperspy._signals.lazy as lazy_module
    from hyperspy.defaults_parser import preferences

    monkeypatch.setattr(preferences.General, "show_progressbar", True)
    bar = lazy_module.progressbar
    _, model_file, scans = series
    capfd.readouterr()
    reports = hs_aeunmix.apply_series(
        model_file, scans[:1], tmp_path, lazy=True, show_progressbar=False
    )
    assert not reports[0].failed
    captured = capfd.readouterr()
    for trace in ("it/s", "%|", "Completed", "Learn", "Project"):
        assert trace not in captured.err + captured.out
    assert preferences.General.show_progressbar is True
    assert lazy_module.progressbar is bar


def test_skip_existing_resumes_a_series(series, tmp_path):
    _, model_file, scans = series
    first = hs_aeunmix.apply_series(
        model_file, scans[:1], tmp_path, lazy=True, show_progressbar=False
    )
    before = {path: path.stat().st_mtime_ns for path in first[0].written}
    reports = hs_aeunmix.apply_series(
        model_file, scans[:2], tmp_path, skip_existing=True, show_progressbar=False
    )
    assert [report.skipped for report in reports] == [True, False]
    assert not any(report.failed for report in reports)
    assert "skipped" in reports[0].summary
    assert reports[0].written == ()
    assert {path: path.stat().st_mtime_ns for path in before} == before
    assert (tmp_path / "scan1_ae.hspy").is_file()
    # A scan with a part of its results is neither skipped nor overwritten.
    (tmp_path / "scan1_abundances.png").unlink()
    with pytest.raises(
        ValueError, match=r"a part of the results.*scan1_ae\.hspy.*--overwrite"
    ):
        hs_aeunmix.apply_series(
            model_file, scans[:2], tmp_path, skip_existing=True, show_progressbar=False
        )
