"""``--precision``: explicit policies, ``auto``'s probe and cache, float32 outputs, flags.

Tiny models (32-64 px) and one- or two-step probes; no timing is asserted (the speeds
are measured by ``benchmarks/precision.py``).
"""

import json
import sys

import numpy as np
import pytest

from dfdetect import experiment, precision

sys.path.insert(0, str(experiment.REPO_ROOT / "experiments"))  # the experiment scripts

BF16, F32 = precision.BF16, precision.FLOAT32


@pytest.fixture(autouse=True)
def back_to_float32():
    """Every test leaves the process as it found it: float32, no run-wide choice."""
    yield
    precision.configure(F32)
    precision.set_policy(F32)


@pytest.fixture()
def native_bf16(monkeypatch):
    """Behave like a CPU with bf16 instructions, whatever this machine has."""
    monkeypatch.setattr(precision, "on_gpu", lambda: False)
    monkeypatch.setattr(precision, "bf16_support", lambda: (True, "test"))


def _meso(size=32):
    from dfdetect.models.meso import build_meso4

    return build_meso4((size, size, 3))


def _no_probe(*args, **kwargs):
    raise AssertionError("the probe ran")


# --------------------------------------------------------------------------- explicit

def test_explicit_choices_set_the_policy_and_restore_it(tmp_path):
    assert precision.configure("mixed_bfloat16", cache_dir=tmp_path) == BF16
    assert precision.global_policy() == BF16
    assert precision.run_key_entry() == {"precision": BF16}
    assert json.loads((tmp_path / "precision.json").read_text())["requested"] == BF16
    assert precision.configure("float32") == F32
    assert precision.global_policy() == F32 and precision.run_key_entry() == {}

    with precision.policy_scope(BF16):
        assert precision.global_policy() == BF16
    assert precision.global_policy() == F32
    # explicit choices decide without a probe
    decision = precision.resolve_precision("mixed_bfloat16", _no_probe, log=None)
    assert decision.policy == BF16 and decision.reason == "asked"
    with pytest.raises(precision.DfdetectError, match="unknown precision"):
        precision.check_choice("float16")


def test_default_touches_nothing(tmp_path):
    precision.configure(None, cache_dir=tmp_path)
    model = _meso()
    assert precision.prepare_model(model) == F32
    assert precision.model_precision(model) == F32
    assert not (tmp_path / "precision.json").exists()  # committed folders stay as they are


# --------------------------------------------------------------------------- outputs

def _output_builders():
    from dfdetect.models import custom_cnn, fusion, meso, sequence

    return {
        "meso4": lambda: meso.build_meso4((32, 32, 3)),
        "fusion_meso4": lambda: fusion.build_fusion_model("meso4", input_shape=(32, 32, 3)),
        "custom_cnn": lambda: custom_cnn.build_custom_cnn([8], input_shape=(32, 32, 3)),
        "pose_lstm": lambda: sequence.build_pose_lstm(hidden=8, layers=1, input_shape=(6, 4)),
    }


@pytest.mark.parametrize("name", ["meso4", "fusion_meso4", "custom_cnn", "pose_lstm"])
def test_output_layer_and_loss_stay_float32_under_mixed_policy(name):
    from dfdetect import training

    precision.configure("mixed_bfloat16")
    model = _output_builders()[name]()
    assert precision.model_precision(model) == BF16
    # Keras' mixed policy alone would give a bfloat16 sigmoid / softmax:
    assert any(l.compute_dtype == "bfloat16" for l in precision.output_layers(model))
    training.compile_model(model, "adam", 1e-3)  # puts the model into the run's precision
    assert all(l.compute_dtype == "float32" for l in precision.output_layers(model))
    x = np.random.default_rng(0).random((2, *model.input_shape[1:]), dtype=np.float32)
    assert model(x).dtype == "float32"
    y = (np.array([[0.0], [1.0]], np.float32) if model.output_shape[-1] == 1
         else np.array([0, 1], np.int32))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])


def test_convert_in_place_equals_building_under_the_policy():
    in_place = _meso()
    precision.convert_model(in_place, BF16)
    with precision.policy_scope(BF16):
        built = _meso()
    precision.float32_outputs(built)
    policies = lambda m: [(l.name, l.dtype_policy.name) for l in m.layers]  # noqa: E731
    assert policies(in_place) == policies(built)
    precision.convert_model(in_place, F32)
    assert precision.model_precision(in_place) == F32


def test_export_records_the_precision_and_saves_float32(tmp_path):
    from dfdetect.models.export import export_model, load_exported

    with precision.policy_scope(BF16):
        model = _meso()
    precision.float32_outputs(model)
    path = export_model(model, tmp_path / "m.keras", experiment="test")
    loaded, meta = load_exported(path)
    assert meta["precision"] == BF16
    assert precision.model_precision(loaded) == F32  # runs in float32 wherever it is loaded
    assert precision.model_precision(model) == BF16  # the trained model is left as it was


# --------------------------------------------------------------------------- auto

def test_auto_keeps_float32_where_bf16_is_unsupported(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "on_gpu", lambda: False)
    monkeypatch.setattr(precision, "bf16_support", lambda: (False, "CPU has no avx512_bf16"))
    monkeypatch.setattr(precision, "probe", _no_probe)
    monkeypatch.setattr(precision, "probe_model", _no_probe)
    lines = []
    decision = precision.resolve_precision("auto", _meso, cache_dir=tmp_path, log=lines.append)
    assert decision.policy == F32 and "avx512_bf16" in decision.reason
    assert lines == [decision.line()] and lines[0].startswith("precision: float32")
    # the run-wide path too: the model stays float32
    precision.configure("auto", cache_dir=tmp_path, log=lines.append)
    model = _meso()
    assert precision.prepare_model(model) == F32 and precision.model_precision(model) == F32


def test_cpu_flags_decide_support(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert precision.bf16_support()[0] is False
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert precision.bf16_support() == (True, "CPU has amx_bf16")


def test_auto_probes_once_then_reads_the_cache(native_bf16, monkeypatch, tmp_path):
    model = _meso()
    before = [w.copy() for w in model.get_weights()]
    first = precision.resolve_precision("auto", model=model, cache_dir=tmp_path, log=None,
                                        warmup=1, steps=1, rounds=1)
    assert not first.cached and first.speedup > 0
    assert first.policy == (BF16 if first.speedup > precision.MIN_SPEEDUP else F32)
    # the probe trained the model in place; every weight and policy is back
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert precision.model_precision(model) == F32
    probes = json.loads((tmp_path / "precision.json").read_text())["probes"]
    (key, entry), = probes.items()
    assert key.startswith(precision.machine_key()) and "meso4" in key
    assert entry["speedup"] == first.speedup

    monkeypatch.setattr(precision, "probe", _no_probe)
    monkeypatch.setattr(precision, "probe_model", _no_probe)
    again = precision.resolve_precision("auto", model=_meso(), cache_dir=tmp_path, log=None)
    assert again.cached and again.policy == first.policy and again.speedup == first.speedup
    # a builder finds the same cache entry
    built = precision.resolve_precision("auto", _meso, cache_dir=tmp_path, log=None)
    assert built.cached and built.policy == first.policy


def test_builder_probe_restores_the_global_policy(native_bf16):
    decision = precision.resolve_precision("auto", lambda: _meso(32), log=None,
                                           warmup=1, steps=1, rounds=1)
    assert decision.float32_img_s > 0 and decision.bf16_img_s > 0
    assert precision.global_policy() == F32


@pytest.mark.parametrize("speedup, worst, policy", [
    (1.5, 1.2, BF16), (1.05, 1.01, F32), (0.6, 0.5, F32),
    (1.5, 0.9, F32),  # > 10 % at the median, but slower in one round: load noise
])
def test_auto_keeps_bf16_only_above_ten_percent_in_every_round(native_bf16, monkeypatch,
                                                               tmp_path, speedup, worst,
                                                               policy):
    from dfdetect import training

    fake = {"float32_img_s": 10.0, "bf16_img_s": 10.0 * speedup, "speedup": speedup,
            "speedup_min": worst, "speedup_max": speedup}
    monkeypatch.setattr(precision, "probe_model", lambda *a, **k: dict(fake))
    lines = []
    precision.configure("auto", cache_dir=tmp_path, log=lines.append)
    model = _meso()
    training.compile_model(model)
    assert precision.model_precision(model) == policy
    assert all(l.compute_dtype == "float32" for l in precision.output_layers(model))
    record = json.loads((tmp_path / "precision.json").read_text())
    assert record["requested"] == "auto" and record["used"] == {"meso4": policy}
    assert lines[-1].startswith(f"precision: {policy} for meso4 (auto: bf16 {speedup:.2f}x")


def test_auto_on_a_gpu_keeps_keras_policy(monkeypatch):
    monkeypatch.setattr(precision, "on_gpu", lambda: True)
    monkeypatch.setattr(precision, "probe", _no_probe)
    decision = precision.resolve_precision("auto", _meso, log=None)
    assert decision.policy == F32 and "GPU" in decision.reason


# --------------------------------------------------------------------------- flags

EXPERIMENTS = ("p1_fusion", "p2_custom_cnn_grid", "p2_inception_unfreeze", "p2_sequence_grid",
               "p3_convlstm_cbam", "p4_pose_lstm", "p5_deepforense", "benchmark_difficulty")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_takes_precision(name):
    import importlib

    module = importlib.import_module(name)
    assert module.parse_args([]).precision == "float32"
    assert module.parse_args(["--precision", "auto"]).precision == "auto"
    with pytest.raises(SystemExit):
        module.parse_args(["--precision", "float16"])


def test_run_main_configures_before_the_run_and_keys_the_run(tmp_path):
    import p1_fusion

    from dfdetect import results

    seen = {}

    def run(args):
        seen["policy"] = precision.global_policy()
        results.start_or_resume(args.out, {"scale": args.scale})
        seen["key"] = json.loads((tmp_path / results.RUN_KEY_FILE).read_text())

    argv = ["--precision", "mixed_bfloat16", "--out", str(tmp_path)]
    assert experiment.run_main("t", run, p1_fusion.parse_args, argv) == 0
    assert seen == {"policy": BF16, "key": {"scale": "cpu", "precision": BF16}}
    # a non-default precision is not the committed setting: results/scratch/...
    assert experiment.default_out(p1_fusion.parse_args(["--precision", "auto"]),
                                  p1_fusion.parse_args([])).parent.name == "scratch"
    assert experiment.default_out(p1_fusion.parse_args(["--precision", "float32"]),
                                  p1_fusion.parse_args([])).name == "fusion"


def test_train_cli_passes_precision(monkeypatch, tmp_path):
    from dfdetect import cli, train

    args = cli.build_parser().parse_args(["train", "meso4", "--data", "x", "--out", "m.keras"])
    assert args.precision == "float32"
    seen = {}

    def fake_train(*a, **kwargs):
        seen.update(kwargs)
        raise precision.DfdetectError("stop here")

    monkeypatch.setattr(train, "train_model", fake_train)
    code = cli.main(["train", "meso4", "--data", str(tmp_path), "--out",
                     str(tmp_path / "m.keras"), "--precision", "auto"])
    assert code == 2 and seen["precision"] == "auto"


def test_train_model_trains_and_exports_in_bf16(smoke_image_store, tmp_path):
    from dfdetect.models.export import read_metadata
    from dfdetect.train import train_model

    out = tmp_path / "m.keras"
    lines = []
    train_model("meso4", smoke_image_store, out, epochs=1, batch_size=16, image_size=32,
                precision="mixed_bfloat16", log=lines.append)
    assert read_metadata(out)["precision"] == BF16
    assert any(line.startswith("precision: mixed_bfloat16") for line in lines)
    assert json.loads((tmp_path / "precision.json").read_text())["used"] == {"meso4": BF16}


# --------------------------------------------------------------------------- benchmark

def test_benchmark_writes_speedup_and_auto_rows(tmp_path):
    from benchmarks import precision as bench
    from benchmarks import run_all
    from benchmarks.common import write_figures

    figures = bench.measure(["meso4"], size=32, batch=4, log=lambda line: None,
                            warmup=1, steps=1, rounds=1)
    names = [f.figure for f in figures]
    assert names[-1] == "bf16_speedup_meso4"  # the headline last
    for row in ("float32_images_per_s_meso4", "bf16_images_per_s_meso4",
                "auto_picks_bf16_meso4", "auto_vs_float32_worst_round_meso4", "cpu_has_bf16"):
        assert row in names
    write_figures("precision", figures, tmp_path)
    assert "| meso4 |" in run_all.render_readme(tmp_path)
    assert "precision" in run_all.OPT_IN and "precision" not in run_all.SCRIPTS
