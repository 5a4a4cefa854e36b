"""Progress off a terminal: lines a log file shows, not a bar tqdm hides."""

from dfdetect import progress


def test_log_file_gets_periodic_lines_with_rate_and_time_left(capsys, monkeypatch):
    monkeypatch.setenv("DFDETECT_PROGRESS_SECONDS", "0")
    bar = progress.progress(range(4), desc="crop", unit="file")  # stdout is not a terminal
    assert isinstance(bar, progress.LineProgress)
    assert list(bar) == [0, 1, 2, 3]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("crop: 1/4 files (25%), ") and lines[0].endswith(" left")
    assert len(lines) == 4 and lines[-1].startswith("crop: 4/4 files (100%) in ")


def test_lines_wait_for_the_interval_and_end_with_a_summary(capsys):
    bar = progress.LineProgress(total=100, desc="grid", unit="run", every=3600)
    for _ in range(100):
        bar.update()
    bar.close()
    bar.close()
    (line,) = capsys.readouterr().out.splitlines()  # the final line only, printed once
    assert line.startswith("grid: 100/100 runs (100%) in ")


def test_disabled_is_silent(capsys):
    bar = progress.progress(range(3), enabled=False)
    assert list(bar) == [0, 1, 2]
    bar.update(2)
    bar.close()
    assert capsys.readouterr().out == ""


def test_unknown_total_and_durations():
    bar = progress.LineProgress(desc="x", unit="item", every=0)
    assert bar.line() == "x: 0 items, starting"
    assert progress._duration(3725) == "1h02m" and progress._duration(75) == "1m15s"
