import warnings

import keras
import numpy as np
import pytest

from dfdetect import experiment, training
from dfdetect.data.pipeline import array_dataset
from dfdetect.results import ResultsTable


def _toy(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4)).astype(np.float32) + y[:, None] * 3.0
    return x, y


def _model(units):
    inp = keras.Input((4,))
    out = keras.layers.Dense(units, activation="sigmoid" if units == 1 else "softmax")(inp)
    return keras.Model(inp, out)


@pytest.mark.parametrize("units,dtype", [(1, "float32"), (2, "int32")])
def test_fit_learns_and_checkpoints(tmp_path, units, dtype):
    training.set_seed(0)
    x, y = _toy()
    model = training.compile_model(_model(units), learning_rate=0.05)
    ds = array_dataset(x, y, batch_size=16, training=True, label_dtype=dtype)
    val = array_dataset(x, y, batch_size=16, label_dtype=dtype)
    result = training.fit(model, ds, val, epochs=10, out_dir=tmp_path, patience=3,
                          decay_every=5, verbose=0)
    assert result.epochs_run >= 1 and result.seconds > 0
    assert (tmp_path / "best.keras").exists() and (tmp_path / "log.csv").exists()
    scores = training.predict_scores(model, val)
    assert scores.shape == (64,)
    assert ((scores >= 0.5) == y).mean() > 0.8
    assert 1 <= result.best_epoch <= result.epochs_run


@pytest.mark.parametrize("budget,expected", [(0.0, 1), (1e9, 4)])
def test_time_budget_stops_before_the_budget_would_be_overrun(budget, expected):
    x, y = _toy()
    model = training.compile_model(_model(1), learning_rate=0.05)
    stop = training.TimeBudget(budget)
    result = training.fit(model, array_dataset(x, y, batch_size=16, training=True), None,
                          epochs=4, patience=None, verbose=0, extra_callbacks=[stop])
    assert result.epochs_run == expected
    assert stop.stopped_early == (expected < 4)


def test_fit_on_a_shuffled_dataset_does_not_warn_about_shuffle():
    x, y = _toy(32)
    model = training.compile_model(_model(1), learning_rate=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training.fit(model, array_dataset(x, y, 8, training=True, label_dtype="float32"),
                     array_dataset(x, y, 8, label_dtype="float32"), epochs=1, patience=None,
                     verbose=0)
    assert not [w for w in caught if "shuffle" in str(w.message)]


def test_step_decay_halves_every_k():
    schedule = training.step_decay(1e-3, 0.5, 5)
    assert [schedule(e) for e in (0, 4, 5, 10)] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])


def test_lr_scheduler_is_applied(tmp_path):
    x, y = _toy(32)
    model = training.compile_model(_model(1), learning_rate=0.1)
    training.fit(model, array_dataset(x, y, 8, label_dtype="float32"), None, epochs=3,
                 decay_factor=0.5, decay_every=1, patience=None, verbose=0)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.025)


_MIRRORED_SCRIPT = r"""
import json, sys
import tensorflow as tf
# Two logical CPUs must be configured before TensorFlow initialises its devices, which
# is why this runs in a fresh process and not in the test process.
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from dfdetect import experiment, training
from dfdetect.data.pipeline import array_dataset

strategy = training.get_strategy("mirrored")
with strategy.scope():
    inp = keras.Input((4,))
    model = training.compile_model(keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(inp)))
kernel = model.weights[0]
before = kernel.numpy().copy()
rng = np.random.default_rng(0)
y = rng.integers(0, 2, 32)
x = rng.normal(size=(32, 4)).astype("float32") + 3.0 * y[:, None]
training.fit(model, array_dataset(x, y, 8, label_dtype="float32"), None, epochs=1, verbose=0)
copies = [c.numpy() for c in strategy.experimental_local_results(kernel.value)]
model.save(sys.argv[1])
print("RESULT " + json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "mirrored": isinstance(kernel.value, tf.distribute.DistributedValues),
    "copy_devices": [c.device for c in strategy.experimental_local_results(kernel.value)],
    "copies_equal": all(np.allclose(copies[0], c) for c in copies[1:]),
    "trained": not np.allclose(before, copies[0]),
}))
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    """Two logical CPUs -> two replicas, each variable mirrored on both, kept in sync."""
    import json
    import subprocess
    import sys

    path = tmp_path / "m.keras"
    done = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, str(path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    assert result["replicas"] == 2
    assert result["mirrored"]
    assert [d.rsplit(":", 2)[-2:] for d in result["copy_devices"]] == [["CPU", "0"], ["CPU", "1"]]
    assert result["trained"] and result["copies_equal"]
    assert keras.models.load_model(path).output_shape == (None, 1)


def test_run_grid_resumes_and_records_failures(tmp_path):
    table = ResultsTable(tmp_path / "runs.csv")
    calls = []

    def run(config, repeat):
        calls.append((config, repeat))
        if config == "boom":
            raise MemoryError("too big")
        return {"acc": 0.5}

    experiment.run_grid(["a", "boom"], 2, table, run, progress=False, log=lambda s: None)
    assert [r["status"] for r in table.rows] == ["ok", "ok", "failed", "failed"]
    assert table.rows[2]["reason"] == "out of memory"
    keep = ("config", "repeat", "status", "acc")
    first = [{k: r.get(k, "") for k in keep} for r in table.rows]
    calls.clear()
    table2 = ResultsTable(tmp_path / "runs.csv")
    experiment.run_grid(["a", "boom", "c"], 2, table2, run, progress=False, log=lambda s: None)
    assert calls == [("c", 0), ("c", 1)]  # finished rows are not rerun
    assert [{k: r.get(k, "") for k in keep} for r in table2.rows[:4]] == first


WORKER = """
import os, signal, sys
from dfdetect.results import ResultsTable
config = sys.argv[sys.argv.index("--configs") + 1]
table = ResultsTable(sys.argv[1])
if config == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
if config == "broken":
    sys.exit("ValueError: no such layer")
table.append({"config": config, "repeat": 0, "status": "ok", "pid": os.getpid()})
if config != "half":
    table.append({"config": config, "repeat": 1, "status": "ok", "pid": os.getpid()})
"""


def test_run_grid_in_worker_processes_one_per_configuration(tmp_path):
    import sys

    path = tmp_path / "runs.csv"
    table = ResultsTable(path)
    table.append({"config": "done", "repeat": 0, "status": "ok"})
    table.append({"config": "done", "repeat": 1, "status": "ok"})

    def never(config, repeat):  # the worker, not this process, trains
        raise AssertionError("ran in the parent process")

    worker = [sys.executable, "-c", WORKER, str(path)]
    rows = experiment.run_grid(["done", "a", "killed", "broken", "half", "b"], 2, table, never,
                             progress=False, log=lambda s: None, worker=worker)
    got = {(r["config"], r["repeat"]): r for r in rows}
    assert len(rows) == 12 and len(got) == 12
    assert got[("a", "0")]["pid"] == got[("a", "1")]["pid"] != got[("b", "0")]["pid"]
    assert got[("killed", "1")]["reason"] == "out of memory (worker process killed)"
    assert got[("broken", "0")]["reason"] == ("worker process exited with code 1: "
                                              "ValueError: no such layer")
    assert got[("half", "0")]["status"] == "ok" and got[("half", "1")]["status"] == "failed"
    assert [r["config"] for r in rows[:2]] == ["done", "done"]  # finished rows untouched


def test_imbalance_schedule_visits_every_fake_once():
    labels = np.array([0] * 5 + [1] * 23)
    rounds = training.imbalance_schedule(labels, rng=0)
    assert len(rounds) == 5  # ceil(23 / 5)
    fakes_seen = np.concatenate([r[labels[r] == 1] for r in rounds])
    assert sorted(fakes_seen.tolist()) == list(range(5, 28))
    for r in rounds:
        assert sorted(r[labels[r] == 0].tolist()) == [0, 1, 2, 3, 4]


def test_imbalance_schedule_paper_chunks():
    labels = np.array([0] * 490 + [1] * 5539)
    rounds = training.imbalance_schedule(labels, rng=0, chunk_size=590)
    assert [int((labels[r] == 1).sum()) for r in rounds] == [590] * 9 + [229]


def test_class_weights_balance():
    w = training.class_weights([0, 1, 1, 1])
    assert w[0] * 1 == pytest.approx(w[1] * 3)


def test_fit_shows_named_epoch_lines_with_validation_metrics(capsys):
    """Issue 32, item 5: Keras' own lines ("2/2 - 18s - 9s/step - ...") named no model;
    every run now shows dfdetect's progress, one named line per epoch."""
    x, y = _toy(32)
    model = training.compile_model(_model(1), learning_rate=0.05, auc=True)
    data = array_dataset(x, y, 8, label_dtype="float32")
    lines = []
    training.fit(model, data, data, epochs=2, verbose=2, name="toy r0", log=lines.append)
    assert [line.split(":")[0] for line in lines] == ["toy r0 epoch 1/2", "toy r0 epoch 2/2"]
    head = lines[0].split(": ", 1)[1]
    assert head.startswith("loss ") and " val_loss " in head and " val_auc " in head
    assert " lr 0.05 " in head and head.endswith(" s)")
    assert "step" not in capsys.readouterr().out  # no Keras bar or step lines
    lines.clear()
    training.fit(model, data, None, epochs=1, verbose=0, log=lines.append)
    assert lines == []


def test_a_grid_worker_does_not_call_its_parents_rows_a_resume(tmp_path, monkeypatch):
    """Issue 32, item 1: each fusion's worker printed "resuming: 2 finished runs kept"
    (its single models, finished by earlier workers) on a fresh run."""
    table = ResultsTable(tmp_path / "runs.csv")
    table.append({"config": "meso4", "repeat": 0, "status": "ok"})
    said = []
    experiment.run_grid(["meso4", "fusion"], 1, table, lambda c, r: {}, log=said.append)
    assert said == ["resuming: 1 finished runs kept, 1 to go"]
    said.clear()
    monkeypatch.setenv(experiment.WORKER_ENV, "1")
    table.append({"config": "other", "repeat": 0, "status": "ok"})
    experiment.run_grid(["other", "more"], 1, table, lambda c, r: {}, log=said.append)
    assert not [line for line in said if line.startswith("resuming")]
