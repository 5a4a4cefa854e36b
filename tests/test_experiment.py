import sys

from dfdetect import experiment

sys.path.insert(0, str(experiment.REPO_ROOT / "experiments"))


def test_split_rows_keeps_identity_together_and_given_splits():
    rows = [{"identity": f"id{i // 2}", "split": "", "video_id": f"v{i}"} for i in range(400)]
    rows += [{"identity": "x", "split": "cross", "video_id": "c"}]
    splits = experiment.split_rows(rows, seed=3)
    assert len(splits["cross"]) == 1
    where = {}
    for name, members in splits.items():
        for r in members:
            where.setdefault(r["identity"], set()).add(name)
    assert all(len(s) == 1 for s in where.values())
    n = sum(len(splits[s]) for s in ("train", "val", "test"))
    assert n == 400 and 0.7 < len(splits["train"]) / n < 0.9


def test_split_rows_is_pinned_by_seed_across_processes_and_row_order():
    """A split made today must be the split a rerun makes tomorrow, in another process
    (Python's own hash() is salted per process) and whatever the row order: pinned values,
    not a call compared with itself."""
    import subprocess

    rows = [{"video_id": f"v{i}", "source": "s", "split": ""} for i in range(50)]

    def held_out(rows, seed):
        out = experiment.split_rows(rows, seed)
        return {k: sorted(r["video_id"] for r in out[k]) for k in ("val", "test")}

    pinned = {"val": ["v11", "v17", "v22", "v34", "v38", "v40", "v46"],
              "test": ["v19", "v20", "v32", "v41", "v49", "v8"]}
    assert held_out(rows, 1) == pinned
    assert held_out(rows[::-1], 1) == pinned
    assert held_out(rows, 2) != pinned  # the seed matters
    code = ("from dfdetect import experiment; rows = [{'video_id': f'v{i}', 'source': 's', "
            "'split': ''} for i in range(50)]; print(sorted(r['video_id'] for r in "
            "experiment.split_rows(rows, 1)['test']))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
                           cwd=experiment.REPO_ROOT, check=True)
    assert other.stdout.strip() == str(pinned["test"])


def test_weights_arg():
    assert experiment.weights_arg("none") is None
    assert experiment.weights_arg("imagenet") == "imagenet"


# --------------------------------------------------------------------------- output folder

def _out_of(parse_args, argv):
    """The results folder run_main hands an experiment's run for ``argv``."""
    seen = {}

    def run(args):
        seen.update(out=args.out, argv=args.argv)

    assert experiment.run_main("t", run, parse_args, argv) == 0
    return seen


def test_only_committed_settings_write_the_committed_tables():
    import p1_fusion

    results = experiment.REPO_ROOT / "results"
    assert _out_of(p1_fusion.parse_args, [])["out"] == str(results / "fusion")
    # what only changes the display or the scheduling keeps the committed folder
    assert _out_of(p1_fusion.parse_args, ["--quiet", "--in-process"])["out"] == str(
        results / "fusion")
    for argv in (["--scale", "smoke"], ["--configs", "meso4"], ["--epochs", "1"],
                 ["--seed", "3"], ["--faces", "/x/faces"], ["--frames", "3"]):
        seen = _out_of(p1_fusion.parse_args, argv)
        assert seen["out"] == str(results / "scratch" / "fusion"), argv
        # worker processes are told the folder: their --configs would change it
        assert seen["argv"][-2:] == ["--out", seen["out"]]
    assert _out_of(p1_fusion.parse_args, ["--scale", "smoke", "--out", "/tmp/x"])["out"] == "/tmp/x"


def test_difficulty_keeps_one_table_across_face_sources():
    import benchmark_difficulty

    results = experiment.REPO_ROOT / "results"
    parse = benchmark_difficulty.parse_args
    assert _out_of(parse, ["--faces", "/x/faces"])["out"] == str(results / "benchmarks")
    assert _out_of(parse, ["--scale", "smoke"])["out"] == str(results / "scratch" / "benchmarks")


def test_scratch_is_ignored_by_git():
    import subprocess

    path = "results/scratch/fusion/table_3_1.csv"
    done = subprocess.run(["git", "check-ignore", "-q", path], cwd=experiment.REPO_ROOT)
    assert done.returncode == 0


def test_every_help_is_fast_and_starts_no_tensorflow():
    import subprocess
    import time

    scripts = sorted((experiment.REPO_ROOT / "experiments").glob("*.py"))
    commands = [[str(s), "--help"] for s in scripts]
    commands += [["-m", "dfdetect.cli", *c, "--help"] for c in ([], ["predict"], ["evaluate"])]
    for command in commands:
        started = time.monotonic()
        done = subprocess.run([sys.executable, *command], capture_output=True, text=True)
        seconds = time.monotonic() - started
        assert done.returncode == 0 and "usage:" in done.stdout, command
        assert "tensorflow" not in done.stderr.lower() and "absl" not in done.stderr, command
        assert seconds < 2, (command, seconds)
