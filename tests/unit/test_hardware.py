"""Settings resolved from the hardware (issue 13): decisions on simulated CPUs, GPUs and core counts."""

import pytest

from ja_ner import hardware
from ja_ner.hardware import Hardware

AVX2_EPYC = frozenset(["fpu", "sse4_2", "avx", "avx2", "fma"])
ZEN5_EPYC = AVX2_EPYC | {"avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni"}
SAPPHIRE_RAPIDS = AVX2_EPYC | {"avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"}
INT8_PASSED = {"int8": True, "bfloat16": True}


@pytest.mark.parametrize(("cores", "gpus", "expected"), [(1, 0, 1), (2, 0, 2), (16, 0, 16), (16, 4, 4), (2, 1, 1)])
def test_workers_one_per_core_or_gpu(cores, gpus, expected):
    assert hardware.workers(Hardware(cores=cores, gpus=gpus)).value == expected


@pytest.mark.parametrize(("cores", "workers", "expected"), [(2, 2, 1), (2, 1, 2), (16, 4, 4), (16, 3, 5), (2, 8, 1)])
def test_threads_share_the_cores_between_workers(cores, workers, expected):
    assert hardware.threads(Hardware(cores=cores), workers).value == expected


def test_threads_on_gpu_is_one():
    assert hardware.threads(Hardware(cores=16, gpus=2), 2, device="cuda:0").value == 1


@pytest.mark.parametrize(
    ("affinity", "cpu_max", "expected"),
    [(8, "max 100000", 8), (8, "200000 100000", 2), (8, "150000 100000", 1), (2, "50000 100000", 1), (4, "", 4)],
)
def test_usable_cores_honours_affinity_and_cgroup_quota(affinity, cpu_max, expected):
    assert hardware.usable_cores(affinity=affinity, cpu_max=cpu_max or "max") == expected


def test_cpu_flags_from_cpuinfo_text():
    text = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags : fpu\n"
    assert hardware.cpu_flags(text) == {"fpu", "avx2", "avx512_bf16"}
    assert hardware.cpu_flags("") == frozenset()


def test_gates_read_from_the_model_config():
    config = {"ner_format_gates": {"int8": {"passed": True, "f1": 0.85}, "bfloat16": {"passed": False}}}
    assert hardware.gates_of(config) == {"int8": True, "bfloat16": False}
    assert hardware.gates_of({}) == {}
    assert hardware.gates_of({"ner_format_gates": "garbage"}) == {}


def test_detect_describes_this_machine():
    hw = hardware.detect()
    assert hw.cores >= 1
    assert "usable core" in hw.describe()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, "150000 100000"),  # cgroup v2
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, "200000 100000"),  # v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, "max 100000"),
        ({}, "max"),
    ],
)
def test_the_cpu_quota_is_read_from_cgroup_v2_or_v1(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert hardware.cpu_quota(tmp_path).strip() == expected
