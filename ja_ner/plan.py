"""The execution plan: runtime, number format, threads and padding, resolved once per entry point.

Every entry point (the TorchServe handler, the Triton adapter, the CLI, the benchmark, evaluation)
calls ``resolve`` once and hands the resulting ``Plan`` to ``ja_ner.forward.load``; nothing below
it decides a format, a thread count or a padding multiple again. The inputs are the settings
(``runtime``, ``dtype``, ``threads``, ``batch_invariant``), the hardware (``ja_ner.hardware``), the
model's recorded accuracy gates (config.json ``ner_format_gates``) and, where more than one pair
of runtime and format is allowed, a short probe measured on this machine (``ja_ner.forward.probe``):

1. **Candidates**: (runtime, format) pairs this machine runs natively and the model's gates allow.
   torch float32 always; torch bfloat16 where the CPU has native bf16 (``amx_bf16``/``avx512_bf16``)
   or CUDA capability 8.0+; torch float16 on CUDA 7.0+; torch int8 on CPU when its gate passed;
   ONNX Runtime float32 on CPU when the model folder holds an exported graph (``model.onnx``) and
   ``onnxruntime`` imports, unless its gate failed. An explicit ``runtime``/``dtype`` narrows them.
2. **Batch invariance** (``batch_invariant: true``, the default): a text's answer must not depend
   on its batch neighbours. The probe predicts its texts alone and then together in padded
   batches; a pair whose probabilities move by more than ``INVARIANCE_TOLERANCE`` (float32
   summation-order noise is below 5e-6; int8's per-tensor activation scale, or a bf16 kernel that
   changes with the batch shape, moves them by 1e-3 or more) is served ``rowwise``: each window
   its own forward, unpadded, which is exactly the computation of the text sent alone. With
   ``batch_invariant: false`` it is served batched (documented as batch-dependent).
3. **Speed**: of the pairs, the one whose probe pass (every text alone, then in batches of
   ``PROBE_BATCH``, or row by row where it must run ``rowwise``) took least time, unless the
   reference (torch float32) is within ``PREFER_REFERENCE_MARGIN`` of it: a reduced format or a
   second runtime has to pay for itself clearly.

Probe results are cached on disk per machine, model, thread count and candidate set (a file lock
makes the workers of one server share one measurement, so they all serve the same pair);
``JA_NER_CACHE`` names the folder (default ``~/.cache/ja-ner``, else the temp folder); the probe
always runs at one thread, so every entry point on a machine reads the same measurement.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ja_ner import hardware
from ja_ner.errors import ConfigError

log = logging.getLogger(__name__)

FORMATS = ("float32", "bfloat16", "float16", "int8")
RUNTIMES = ("torch", "onnxruntime")
REFERENCE = ("torch", "float32")
# Largest difference of any probability between a text predicted alone and inside a batch that
# still counts as the same answer: half the last printed digit (scores print 4 decimals), ten
# times the float32 summation-order noise measured, and 20 times below what quantisation does.
INVARIANCE_TOLERANCE = 5e-5
# A pair must beat the reference by this fraction of the probe time to be picked over it.
PREFER_REFERENCE_MARGIN = 0.10
PROBE_BATCH = 8
PROBE_VERSION = 2
# Written for the probe: varied lengths and entity kinds, so a batch of them is padded.
PROBE_TEXTS = (
    "鈴木は熊本県の阿蘇山に登った。",
    "トヨタ自動車は愛知県豊田市に本社を置く自動車メーカーで、世界各地に工場を持っている。",
    "東京",
    "国際連合の総会がニューヨークで開かれ、各国の代表が気候変動への対策について演説した。",
    "山田花子さんは京都大学を卒業した後、ソニーに入社してプレイステーションの開発に携わった。",
    "北海道札幌市で開かれた冬季オリンピックには多くの観客が集まった。",
    "日本銀行は金融政策決定会合で、短期金利の誘導目標を据え置くことを決めた。",
    "彼は大阪から新幹線で博多へ向かった。",
    "夏目漱石の小説『吾輩は猫である』は1905年に雑誌ホトトギスで発表された。",
    "自由民主党と立憲民主党の党首が国会で討論した。",
    "ルーブル美術館にはモナ・リザが展示されている。",
    "ワールドカップの決勝はカタールのルサイル・スタジアムで行われ、アルゼンチンが優勝した。",
    "羽田空港",
    "任天堂は京都市に本社を置くゲーム会社で、ニンテンドースイッチを販売している。",
    "パナソニックと日立製作所は共同で新会社を設立すると発表した。",
    "阪神タイガースは甲子園球場で読売ジャイアンツと対戦した。",
)
# The graph ``handler.archive`` / ``deploy/triton/build_repo.py`` export beside the weights.
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class Plan:
    """Concrete values the forward runs with; ``reason`` says why (logged once per entry point)."""

    device: str  # "cpu" or "cuda:N"
    runtime: str  # one of RUNTIMES
    dtype: str  # one of FORMATS
    threads: int  # intra-op threads of this process (CPU); 1 on CUDA
    pad_multiple: int = 1  # micro-batch lengths rounded up to a multiple of this many tokens
    batch_invariant: bool = True  # whether answers were required (and measured) not to depend on neighbours
    rowwise: bool = False  # each window its own unpadded forward (a format whose batches move answers)
    reason: str = ""

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.dtype not in FORMATS:
            raise ConfigError(f"dtype must be one of {', '.join(FORMATS)}, got {self.dtype!r}")
        if self.threads < 1 or self.pad_multiple < 1:
            raise ConfigError("a plan needs at least one thread and a padding multiple of at least 1")
        if self.dtype == "int8" and self.device != "cpu":
            raise ConfigError(f"dtype int8 (dynamic quantisation) runs on CPU only, not {self.device}")
        if self.runtime == "onnxruntime" and self.dtype != "float32":
            raise ConfigError(f"runtime onnxruntime serves float32 only, not {self.dtype}")

    @property
    def pair(self) -> str:
        """``runtime/dtype``, as logged and as the benchmark names variants."""
        return f"{self.runtime}/{self.dtype}"

    def describe(self) -> str:
        batching = "row by row" if self.rowwise else f"batched, padded to {self.pad_multiple}"
        return (
            f"{self.pair} on {self.device}, {self.threads} thread(s), {batching}, "
            f"batch_invariant={str(self.batch_invariant).lower()}: {self.reason}"
        )


@dataclass(frozen=True)
class ProbeResult:
    """One pair measured by ``ja_ner.forward.probe`` on this machine."""

    single_ms: float  # median milliseconds of one text alone
    singles_s: float  # seconds for every probe text alone, one after another
    batch_s: float  # seconds for the same texts in padded batches of PROBE_BATCH
    max_diff: float  # largest probability difference, alone vs in a batch

    @property
    def invariant(self) -> bool:
        return self.max_diff <= INVARIANCE_TOLERANCE

    def seconds(self, rowwise: bool) -> float:
        """The probe pass as it would be served: texts alone, then batched (or row by row again)."""
        return self.singles_s * 2 if rowwise else self.singles_s + self.batch_s

    def describe(self, texts: int, rowwise: bool) -> str:
        mode = "row by row" if rowwise else f"B{PROBE_BATCH} {texts / max(self.batch_s, 1e-9):.1f} sent/s"
        flag = " (batch-dependent: served row by row)" if rowwise else "" if self.invariant else " (batch-dependent)"
        return f"single {self.single_ms:.1f} ms, {mode}, alone-vs-batch diff {self.max_diff:.1e}{flag}"


Measure = Callable[[Path, Sequence[tuple[str, str]], int, str], dict[tuple[str, str], ProbeResult]]


def pad_multiple_for(runtime: str, dtype: str, device: str) -> int:
    """Padding that pays: 16 tokens where oneDNN builds and caches kernels per input shape.

    torch's bfloat16/float16 CPU kernels (oneDNN) and CUDA keep per-shape state, so lengths
    rounded to 16 bound a worker's shapes and memory (docs/operations.md, "Soak"); float32 and
    int8 on CPU and ONNX Runtime gain nothing from it, and a lone request paid 16 % for it.
    """
    if runtime == "torch" and (dtype in ("bfloat16", "float16") or device.startswith("cuda")):
        return 16
    return 1


def onnx_available(model_dir: Path) -> bool:
    """Whether ONNX Runtime can serve this model folder: an exported graph and the package."""
    if not (Path(model_dir) / ONNX_FILE).is_file():
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def candidates(
    hw: hardware.Hardware, gates: Mapping[str, bool], device: str, *, onnx: bool = False
) -> list[tuple[tuple[str, str], str]]:
    """Every (runtime, format) this machine runs natively that the gates allow, with why; reference first.

    A format missing from ``gates`` was not measured: bfloat16 and float16 are allowed then (their
    held-out F1 matched fp32), int8 is not. ONNX Runtime's gate is ``onnxruntime/float32``.
    """
    out = [(REFERENCE, "the reference")]
    if device.startswith("cuda"):
        cap = hw.cuda_capability or (0, 0)
        where = f"CUDA capability {cap[0]}.{cap[1]}"
        if cap >= (8, 0) and gates.get("bfloat16", True):
            out.append((("torch", "bfloat16"), f"{where} runs bfloat16 natively"))
        if cap >= (7, 0) and gates.get("float16", True):
            out.append((("torch", "float16"), f"{where}: float16 tensor cores"))
        return out
    native = hardware.native_bf16(hw)
    if native and gates.get("bfloat16", True):
        out.append((("torch", "bfloat16"), f"CPU runs bfloat16 natively ({' '.join(native)})"))
    if gates.get("int8"):
        out.append((("torch", "int8"), "its int8 accuracy gate passed"))
    if onnx and gates.get("onnxruntime/float32", True):
        out.append((("onnxruntime", "float32"), "an exported ONNX graph and onnxruntime"))
    return out


def resolve(
    settings: object,
    model_dir: str | Path,
    *,
    workers: int = 1,
    workers_why: str = "in process",
    hw: hardware.Hardware | None = None,
    measure: Measure | None = None,
) -> Plan:
    """The plan for one entry point (see the module docstring for the rules).

    Args:
        settings: a ``ja_ner.settings.Settings`` (device, runtime, dtype, threads, batch_invariant).
        workers: processes of this model sharing the machine (threads = usable cores / workers).
        measure: the probe (default ``ja_ner.forward.probe``); called only when a choice remains.

    Raises:
        ConfigError: an explicit runtime/format this machine or model cannot serve.
    """
    model_dir = Path(model_dir)
    device: str = settings.device  # type: ignore[attr-defined]
    runtime: str = settings.runtime  # type: ignore[attr-defined]
    dtype: str = settings.dtype  # type: ignore[attr-defined]
    invariant: bool = settings.batch_invariant  # type: ignore[attr-defined]
    hw = hw or hardware.detect()
    threads = int(settings.threads)  # type: ignore[attr-defined]
    threads_why = "set"
    if threads <= 0:
        picked = hardware.threads(hw, workers, device)
        threads, threads_why = int(picked.value), f"auto: {picked.reason} ({workers_why})"
    elif device.startswith("cuda"):
        threads = 1
    config = _config(model_dir)
    gates = hardware.gates_of(config)
    onnx = device == "cpu" and onnx_available(model_dir)
    allowed = candidates(hw, gates, device, onnx=onnx)
    if runtime == "onnxruntime" and not onnx and device == "cpu":
        graph = model_dir / ONNX_FILE
        raise ConfigError(f"runtime onnxruntime needs {graph} (make archive exports it) and onnxruntime")
    explicit = [(p, why) for p, why in allowed if runtime in ("auto", p[0]) and dtype in ("auto", p[1])]
    if runtime != "auto" and dtype != "auto" and not explicit:
        explicit = [((runtime, dtype), "set explicitly")]  # served as asked; Plan/forward check it can run
    if not explicit:
        raise ConfigError(
            f"no allowed pair for runtime={runtime} dtype={dtype} on {device} "
            f"(allowed here: {', '.join(f'{r}/{d}' for (r, d), _ in allowed)})"
        )
    if runtime == "onnxruntime" and not onnx and device == "cpu":
        raise ConfigError(
            f"runtime onnxruntime needs {model_dir / ONNX_FILE} (make archive exports it) and onnxruntime"
        )
    if [p for p, _ in explicit] == [REFERENCE]:  # nothing to choose, and invariant by construction
        return _plan(device, REFERENCE, threads, invariant, False, f"the reference; threads {threads_why}", hw)
    pairs = [p for p, _ in explicit]
    # One thread, whatever this entry point runs with: every entry point on this machine then reads
    # the same measurement and picks the same pair (a server's workers, Triton, the CLI alike).
    measured = cached_probe(model_dir, pairs, 1, device, hw, measure=measure)
    return _choose(device, explicit, measured, threads, invariant, threads_why, hw)


def _choose(
    device: str,
    explicit: list[tuple[tuple[str, str], str]],
    measured: Mapping[tuple[str, str], ProbeResult],
    threads: int,
    invariant: bool,
    threads_why: str,
    hw: hardware.Hardware,
) -> Plan:
    def rowwise(pair: tuple[str, str]) -> bool:
        return invariant and not measured[pair].invariant

    def cost(pair: tuple[str, str]) -> float:
        return measured[pair].seconds(rowwise(pair)) if pair in measured else float("inf")

    figures = "; ".join(f"{r}/{d} {m.describe(len(PROBE_TEXTS), rowwise((r, d)))}" for (r, d), m in measured.items())
    best, why = min(explicit, key=lambda pw: cost(pw[0]))
    if (
        best != REFERENCE
        and REFERENCE in dict(explicit)
        and cost(best) > cost(REFERENCE) * (1 - PREFER_REFERENCE_MARGIN)
    ):
        best, why = REFERENCE, f"no pair beat the reference by {PREFER_REFERENCE_MARGIN:.0%}"
    elif len(explicit) > 1:
        why = f"measured fastest ({why})"
    reason = f"{why}; probe: {figures}; threads {threads_why}"
    return _plan(device, best, threads, invariant, best in measured and rowwise(best), reason, hw)


def _plan(
    device: str, pair: tuple[str, str], threads: int, invariant: bool, rowwise: bool, reason: str, hw: hardware.Hardware
) -> Plan:
    runtime, dtype = pair
    return Plan(
        device=device,
        runtime=runtime,
        dtype=dtype,
        threads=threads,
        pad_multiple=1 if rowwise else pad_multiple_for(runtime, dtype, device),
        batch_invariant=invariant,
        rowwise=rowwise,
        reason=f"{reason} [{hw.describe()}]",
    )


def _config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def cache_dir() -> Path | None:
    """Where probe results and exported graphs are kept; None where no folder is writable.

    ``JA_NER_CACHE``, then ~/.cache/ja-ner, then the temp folder: the first that is writable.
    """
    named = os.environ.get("JA_NER_CACHE")
    candidates = [Path(named)] if named else []
    candidates += [Path.home() / ".cache" / "ja-ner", Path(tempfile.gettempdir()) / "ja-ner"]
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    return None


def model_key(model_dir: Path) -> str:
    """A digest of a model's content: config.json, and the size, head and tail of each weights file.

    Content, not paths or times: the copy TorchServe unpacks for each worker has the same key.
    """
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", ONNX_FILE):
        path = model_dir / name
        if not path.is_file():
            continue
        size = path.stat().st_size
        digest.update(f"{name}:{size}".encode())
        with open(path, "rb") as f:
            digest.update(f.read(1 << 20))
            f.seek(max(0, size - (1 << 20)))
            digest.update(f.read())
    return digest.hexdigest()[:20]


def probe_key(
    model_dir: Path, pairs: Sequence[tuple[str, str]], threads: int, device: str, hw: hardware.Hardware
) -> str:
    """What a probe result depends on: the model files, the pairs, threads, device and CPU."""
    digest = hashlib.sha256(model_key(model_dir).encode())
    digest.update(json.dumps([PROBE_VERSION, sorted(pairs), threads, device, sorted(hw.cpu_flags), hw.cores]).encode())
    return digest.hexdigest()[:20]


def cached_probe(
    model_dir: Path,
    pairs: Sequence[tuple[str, str]],
    threads: int,
    device: str,
    hw: hardware.Hardware,
    *,
    measure: Measure | None = None,
) -> dict[tuple[str, str], ProbeResult]:
    """The probe's results for these pairs, measured once per key on this machine (file-locked)."""
    if measure is None:
        from ja_ner.forward import probe as measure  # torch only where a probe really runs
    folder = cache_dir()
    if folder is None:  # a read-only container without a writable temp folder: measure, keep nothing
        log.warning("no writable folder for the probe cache (set JA_NER_CACHE): measuring without one")
        return measure(model_dir, pairs, threads, device)
    key = probe_key(model_dir, pairs, threads, device, hw)
    path = folder / f"probe-{key}.json"
    with open(folder / f"probe-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait here, then read the same result
        try:
            if path.is_file():
                raw = json.loads(path.read_text())
                results = {tuple(k.split("/", 1)): ProbeResult(**v) for k, v in raw.items()}
                if set(results) == set(pairs):
                    log.info("probe read back from %s", path)
                    return results  # type: ignore[return-value]
            results = measure(model_dir, pairs, threads, device)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({f"{r}/{d}": asdict(v) for (r, d), v in results.items()}, indent=1))
            tmp.replace(path)
            log.info("probe measured and recorded in %s", path)
            return results
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
