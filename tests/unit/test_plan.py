"""The execution plan (issue 21): candidates per machine, the probe's choice, invariance, the cache."""

from dataclasses import replace
from pathlib import Path

import pytest

from ja_ner import plan as planning
from ja_ner.errors import ConfigError
from ja_ner.hardware import Hardware
from ja_ner.plan import Plan, ProbeResult
from ja_ner.settings import Settings

AVX2_EPYC = frozenset(["fpu", "sse4_2", "avx", "avx2", "fma"])
ZEN4_EPYC = AVX2_EPYC | {"avx512f", "avx512_vnni", "avx512_bf16"}
SAPPHIRE_RAPIDS = AVX2_EPYC | {"avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"}
GATES = {"int8": True, "bfloat16": True}
INVARIANT = 1e-6  # float32 summation noise
DEPENDENT = 3e-2  # what a per-tensor int8 scale does to a probability


def _pairs(flags, gates, device="cpu", onnx=False, **hw):
    found = planning.candidates(Hardware(cores=2, cpu_flags=flags, **hw), gates, device, onnx=onnx)
    return [pair for pair, _ in found]


@pytest.mark.parametrize(
    ("flags", "gates", "onnx", "expected"),
    [
        (AVX2_EPYC, {}, False, [("torch", "float32")]),  # no native bf16, no int8 gate recorded
        (AVX2_EPYC, {"int8": False}, False, [("torch", "float32")]),  # gate measured and failed
        (AVX2_EPYC, GATES, False, [("torch", "float32"), ("torch", "int8")]),
        (AVX2_EPYC, {}, True, [("torch", "float32"), ("onnxruntime", "float32")]),
        (AVX2_EPYC, {"onnxruntime/float32": False}, True, [("torch", "float32")]),
        (ZEN4_EPYC, GATES, False, [("torch", "float32"), ("torch", "bfloat16"), ("torch", "int8")]),
        (SAPPHIRE_RAPIDS, {"bfloat16": False}, False, [("torch", "float32")]),
    ],
)
def test_candidates_are_native_and_gated(flags, gates, onnx, expected):
    assert _pairs(flags, gates, onnx=onnx) == expected


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((9, 0), ["bfloat16", "float16"]), ((7, 5), ["float16"]), ((6, 1), [])],
)
def test_cuda_candidates_follow_capability_and_never_int8(capability, expected):
    pairs = _pairs(AVX2_EPYC, GATES, "cuda:0", onnx=True, gpus=1, cuda_capability=capability)
    assert pairs == [("torch", "float32")] + [("torch", f) for f in expected]


def _model(tmp_path: Path, gates=GATES) -> Path:
    import json

    (tmp_path / "config.json").write_text(
        json.dumps({"ner_format_gates": {k: {"passed": v} for k, v in gates.items()}})
    )
    return tmp_path


def _measure(table: dict):
    calls = []

    def measure(model_dir, pairs, threads, device):
        calls.append(tuple(pairs))
        return {p: ProbeResult(*table[p]) for p in pairs}

    measure.calls = calls  # type: ignore[attr-defined]
    return measure


@pytest.fixture(autouse=True)
def _probe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JA_NER_CACHE", str(tmp_path / "cache"))


def test_the_fastest_invariant_pair_is_picked_and_padding_follows_it(tmp_path):
    # (single_ms, singles_s, batch_s, max_diff)
    measure = _measure(
        {
            ("torch", "float32"): (40, 1.0, 0.8, INVARIANT),
            ("torch", "bfloat16"): (20, 0.5, 0.3, 0.0),
            ("torch", "int8"): (30, 0.7, 0.5, DEPENDENT),
        }
    )
    hw = Hardware(cores=2, cpu_flags=ZEN4_EPYC)
    plan = planning.resolve(Settings(), _model(tmp_path), workers=2, hw=hw, measure=measure)
    assert (plan.runtime, plan.dtype, plan.rowwise, plan.threads) == ("torch", "bfloat16", False, 1)
    assert plan.pad_multiple == 16  # oneDNN's per-shape kernels
    assert "probe" in plan.reason and "bfloat16" in plan.reason


def test_a_batch_dependent_pair_is_served_row_by_row_or_batched_when_allowed(tmp_path):
    table = {("torch", "float32"): (40, 1.0, 0.9, INVARIANT), ("torch", "int8"): (20, 0.4, 0.3, DEPENDENT)}
    hw = Hardware(cores=2, cpu_flags=AVX2_EPYC)
    strict = planning.resolve(Settings(), _model(tmp_path), hw=hw, measure=_measure(table))
    assert (strict.dtype, strict.rowwise, strict.pad_multiple) == ("int8", True, 1)  # 0.8 s vs 1.9 s
    loose = planning.resolve(Settings(batch_invariant=False), _model(tmp_path), hw=hw, measure=_measure(table))
    assert (loose.dtype, loose.rowwise, loose.batch_invariant) == ("int8", False, False)


def test_row_by_row_that_does_not_pay_leaves_the_reference(tmp_path):
    table = {("torch", "float32"): (40, 1.0, 0.5, INVARIANT), ("torch", "int8"): (36, 0.9, 0.3, DEPENDENT)}
    hw = Hardware(cores=2, cpu_flags=AVX2_EPYC)
    plan = planning.resolve(Settings(), _model(tmp_path), hw=hw, measure=_measure(table))
    assert (plan.dtype, plan.rowwise) == ("float32", False)  # int8 row by row: 1.8 s against 1.5 s


def test_a_pair_must_beat_the_reference_clearly(tmp_path):
    table = {("torch", "float32"): (40, 1.0, 1.0, INVARIANT), ("torch", "bfloat16"): (38, 0.96, 0.96, 0.0)}
    hw = Hardware(cores=2, cpu_flags=SAPPHIRE_RAPIDS)
    plan = planning.resolve(Settings(), _model(tmp_path, {}), hw=hw, measure=_measure(table))
    assert plan.dtype == "float32" and "beat the reference" in plan.reason


def test_the_reference_alone_needs_no_probe(tmp_path):
    def fail(*args):
        raise AssertionError("no probe needed")

    hw = Hardware(cores=4, cpu_flags=AVX2_EPYC)
    plan = planning.resolve(Settings(), _model(tmp_path, {}), workers=2, hw=hw, measure=fail)
    assert (plan.pair, plan.threads, plan.pad_multiple) == ("torch/float32", 2, 1)
    explicit = planning.resolve(Settings(dtype="float32", threads=3), _model(tmp_path), hw=hw, measure=fail)
    assert (explicit.dtype, explicit.threads) == ("float32", 3)


def test_an_explicit_format_is_probed_for_invariance_only(tmp_path):
    table = {("torch", "int8"): (20, 0.4, 0.3, DEPENDENT)}
    measure = _measure(table)
    plan = planning.resolve(
        Settings(dtype="int8"), _model(tmp_path), hw=Hardware(cores=2, cpu_flags=AVX2_EPYC), measure=measure
    )
    assert (plan.dtype, plan.rowwise) == ("int8", True)
    assert measure.calls == [(("torch", "int8"),)]


def test_onnxruntime_asked_without_a_graph_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="model.onnx"):
        planning.resolve(Settings(runtime="onnxruntime"), _model(tmp_path), hw=Hardware(cores=2))


def test_the_probe_is_measured_once_and_read_back(tmp_path):
    table = {("torch", "float32"): (40, 1.0, 0.8, INVARIANT), ("torch", "int8"): (20, 0.4, 0.3, DEPENDENT)}
    measure = _measure(table)
    hw = Hardware(cores=2, cpu_flags=AVX2_EPYC)
    first = planning.resolve(Settings(), _model(tmp_path), hw=hw, workers=2, measure=measure)
    again = planning.resolve(Settings(threads=2), _model(tmp_path), hw=hw, measure=measure)
    assert len(measure.calls) == 1  # one measurement per machine and model, whatever the threads
    assert first.pair == again.pair and (first.threads, again.threads) == (1, 2)
    other = Hardware(cores=2, cpu_flags=ZEN4_EPYC)
    with pytest.raises(KeyError):  # another CPU is another key: it measures bfloat16 too
        planning.resolve(Settings(), _model(tmp_path), hw=other, measure=measure)


@pytest.mark.parametrize(
    ("runtime", "dtype", "device", "expected"),
    [
        ("torch", "float32", "cpu", 1),
        ("torch", "int8", "cpu", 1),
        ("torch", "bfloat16", "cpu", 16),
        ("torch", "float32", "cuda:0", 16),
        ("onnxruntime", "float32", "cpu", 1),
    ],
)
def test_padding_only_where_it_pays(runtime, dtype, device, expected):
    assert planning.pad_multiple_for(runtime, dtype, device) == expected


def test_a_plan_refuses_what_cannot_run():
    base = Plan("cpu", "torch", "float32", 1)
    for bad in ({"dtype": "int4"}, {"runtime": "tvm"}, {"threads": 0}, {"device": "cuda:0", "dtype": "int8"}):
        with pytest.raises(ConfigError):
            replace(base, **bad)
    with pytest.raises(ConfigError):
        Settings(runtime="tensorrt")


def test_without_a_writable_cache_the_probe_still_decides(tmp_path, monkeypatch):
    monkeypatch.setattr(planning, "cache_dir", lambda: None)  # a read-only container
    table = {("torch", "float32"): (40, 1.0, 0.8, INVARIANT), ("torch", "int8"): (20, 0.4, 0.3, DEPENDENT)}
    measure = _measure(table)
    plan = planning.resolve(Settings(), _model(tmp_path), hw=Hardware(cores=2, cpu_flags=AVX2_EPYC), measure=measure)
    assert (plan.dtype, plan.rowwise) == ("int8", True) and len(measure.calls) == 1
