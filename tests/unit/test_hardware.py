"""Settings resolved from the hardware (issue 13): decisions on simulated CPUs, GPUs and core counts."""

import pytest

from ja_ner import hardware
from ja_ner.hardware import Hardware

AVX2_EPYC = frozenset(["fpu", "sse4_2", "avx", "avx2", "fma"])
ZEN5_EPYC = AVX2_EPYC | {"avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni"}
SAPPHIRE_RAPIDS = AVX2_EPYC | {"avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"}
INT8_PASSED = {"int8": True, "bfloat16": True}


@pytest.mark.parametrize(
    ("flags", "gates", "expected"),
    [
        (AVX2_EPYC, {}, "float32"),  # no native bf16, no int8 gate recorded
        (AVX2_EPYC, {"int8": False}, "float32"),  # gate measured and failed
        (AVX2_EPYC, INT8_PASSED, "int8"),
        (ZEN5_EPYC, INT8_PASSED, "bfloat16"),  # avx512_bf16 is native
        (SAPPHIRE_RAPIDS, {}, "bfloat16"),  # AMX, no record needed for bf16
        (SAPPHIRE_RAPIDS, {"bfloat16": False, "int8": True}, "int8"),  # a failed bf16 gate is respected
        (SAPPHIRE_RAPIDS, {"bfloat16": False}, "float32"),
    ],
)
def test_cpu_number_format(flags, gates, expected):
    choice = hardware.dtype(Hardware(cores=2, cpu_flags=flags), gates)
    assert choice.value == expected
    assert choice.reason  # logged at worker start


@pytest.mark.parametrize(
    ("capability", "expected"), [((9, 0), "bfloat16"), ((8, 0), "bfloat16"), ((7, 5), "float16"), ((6, 1), "float32")]
)
def test_cuda_number_format_follows_capability(capability, expected):
    hw = Hardware(cores=16, cpu_flags=AVX2_EPYC, gpus=1, cuda_capability=capability)
    assert hardware.dtype(hw, {}, device="cuda:0").value == expected


def test_int8_is_never_chosen_on_cuda():
    hw = Hardware(cores=16, cpu_flags=AVX2_EPYC, gpus=1, cuda_capability=(6, 1))
    assert hardware.dtype(hw, INT8_PASSED, device="cuda:0").value == "float32"


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
    ("flags", "gates", "expected"),
    [
        (AVX2_EPYC, {}, ("float32",)),
        (AVX2_EPYC, INT8_PASSED, ("float32", "int8")),
        (ZEN5_EPYC, INT8_PASSED, ("float32", "bfloat16", "int8")),
        (SAPPHIRE_RAPIDS, {"bfloat16": False, "int8": False}, ("float32",)),
    ],
)
def test_ceiling_candidates_are_native_and_gated(flags, gates, expected):
    assert hardware.candidate_formats(Hardware(cores=2, cpu_flags=flags), gates) == expected


def test_ceiling_candidates_on_cuda():
    hw = Hardware(cores=16, gpus=1, cuda_capability=(9, 0))
    assert hardware.candidate_formats(hw, INT8_PASSED, device="cuda:0") == ("float32", "bfloat16", "float16")


def test_cli_shows_what_auto_picks_on_a_simulated_machine(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"ner_format_gates": {"int8": {"passed": true}}}')
    chosen = hardware.main(["--model", str(tmp_path), "--cores", "4", "--flags", "fpu avx2", "--gpus", "0"])
    assert chosen["workers"].startswith("4:") and chosen["threads"].startswith("1:")
    assert chosen["dtype"].startswith("int8:")
    amx = hardware.main(["--model", str(tmp_path), "--flags", "avx2 amx_bf16", "--gpus", "0"])
    assert amx["dtype"].startswith("bfloat16:")
    assert "dtype" in capsys.readouterr().out


@pytest.mark.parametrize(("cores", "memory", "expected"), [(64, 32.0, 16), (64, 512.0, 64), (4, 1.0, 1), (2, None, 2)])
def test_cpu_workers_fit_in_memory(cores, memory, expected):
    assert hardware.workers(Hardware(cores=cores, memory_gib=memory)).value == expected


def test_usable_memory_from_meminfo_and_cgroup():
    meminfo = "MemTotal:       24641536 kB\nMemFree:  100 kB\n"
    assert hardware.usable_memory_gib(meminfo, "max\n") == 23.5
    assert hardware.usable_memory_gib(meminfo, str(4 * 2**30)) == 4.0
    assert hardware.usable_memory_gib("", "max") is None
