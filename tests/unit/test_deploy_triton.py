"""The Triton adapter (deploy/triton/model.py), its repository builder and launcher, without a server.

model.py imports ``triton_python_backend_utils``, which only exists inside Triton's stub; here a
small stand-in with the same surface (Tensor, InferenceResponse, TritonError and its codes,
get_input_tensor_by_name) takes its place.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from deploy.triton import build_repo, serve
from ja_ner.errors import ALL_ERRORS, ConfigError, InputTooLarge, NerError
from ja_ner.pipeline import Pipeline
from ja_ner.request import parse_request, render_response
from ja_ner.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ADAPTER = REPO / "deploy" / "triton" / "model.py"
# The codes the real python-backend stub defines on TritonError (checked against the binary below).
TRITON_CODES = ("UNKNOWN", "INTERNAL", "NOT_FOUND", "INVALID_ARG", "UNAVAILABLE", "UNSUPPORTED", "ALREADY_EXISTS")


class FakeTritonError(Exception):
    UNKNOWN, INTERNAL, NOT_FOUND, INVALID_ARG, UNAVAILABLE, UNSUPPORTED, ALREADY_EXISTS = range(7)

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self._message, self._code = message, code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code


class FakeMetricFamily:
    COUNTER, GAUGE, HISTOGRAM = range(3)
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def __init__(self, name: str, description: str, kind: int) -> None:
        self.name = name

    def Metric(self, labels: dict[str, str]) -> Any:  # noqa: N802 (the real API's name)
        key = (self.name, tuple(sorted(labels.items())))
        family = self

        class _Metric:
            def increment(self, value: float) -> None:
                assert value >= 0, f"{family.name}: counters only go up"
                FakeMetricFamily.values[key] = FakeMetricFamily.values.get(key, 0.0) + value

        return _Metric()


class FakeTensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self._name, self._array = name, array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class FakeResponse:
    def __init__(self, output_tensors: list[FakeTensor] | None = None, error: FakeTritonError | None = None):
        self.output_tensors, self.error = output_tensors or [], error

    def rows(self) -> list[dict[str, Any]]:
        (tensor,) = self.output_tensors
        assert tensor.name() == "ENTITIES_JSON" and tensor.as_numpy().shape[1] == 1
        return [json.loads(item) for item in tensor.as_numpy().reshape(-1)]

    def error_json(self) -> dict[str, Any]:
        assert self.error is not None, "expected an error response"
        return json.loads(self.error.message())


class FakeRequest:
    def __init__(self, texts: list[bytes | str] | None, options: list[bytes | str] | None = None) -> None:
        def column(items: list[bytes | str]) -> np.ndarray:
            raw = [i.encode() if isinstance(i, str) else i for i in items]
            return np.array(raw, dtype=np.object_).reshape(-1, 1)

        self.tensors = {}
        if texts is not None:
            self.tensors["TEXT"] = FakeTensor("TEXT", column(texts))
        if options is not None:
            self.tensors["OPTIONS"] = FakeTensor("OPTIONS", column(options))


def _fake_pb_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.TritonError = FakeTritonError
    module.Tensor = FakeTensor
    module.InferenceResponse = FakeResponse
    module.MetricFamily = FakeMetricFamily
    module.get_input_tensor_by_name = lambda request, name: request.tensors.get(name)
    return module


def load_adapter(path: Path = ADAPTER) -> types.ModuleType:
    """Import a model.py with the stand-in ``triton_python_backend_utils``."""
    sys.modules.setdefault("triton_python_backend_utils", _fake_pb_utils())
    spec = importlib.util.spec_from_file_location(f"triton_adapter_{abs(hash(path))}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def adapter() -> Iterator[types.ModuleType]:
    saved = sys.modules.pop("triton_python_backend_utils", None)
    try:
        yield load_adapter()
    finally:
        sys.modules.pop("triton_python_backend_utils", None)
        if saved is not None:
            sys.modules["triton_python_backend_utils"] = saved


def model_config_json(config_text: str) -> str:
    """What Triton hands ``initialize`` as ``model_config``: the parsed config.pbtxt as JSON."""
    message = text_format.Parse(config_text, model_config_pb2.ModelConfig())
    return json_format.MessageToJson(message, preserving_proto_field_name=True)


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """``<repository>/ja_ner`` built from the tiny model, with small limits."""
    spec = build_repo.RepoSpec(settings={"max_chars": "40", "max_tokens": "64", "overlap_tokens": "8"})
    return build_repo.build_repo(tiny_model_dir, tmp_path_factory.mktemp("triton") / "repo", spec)


@pytest.fixture(scope="module")
def instance(adapter: types.ModuleType, model_root: Path) -> Any:
    """A TritonPythonModel initialised exactly as Triton does, from the built repository."""
    model = adapter.TritonPythonModel()
    model.initialize(
        {
            "model_config": model_config_json((model_root / "config.pbtxt").read_text()),
            "model_instance_kind": "CPU",
            "model_instance_name": "ja_ner_0_0",
            "model_instance_device_id": "0",
            "model_repository": str(model_root),  # Triton passes the model's own directory
            "model_version": "1",
            "model_name": "ja_ner",
        }
    )
    return model


# -- the error table ---------------------------------------------------------------------------


def test_error_table_covers_every_core_error(adapter: types.ModuleType) -> None:
    for error in ALL_ERRORS:
        assert error.code in adapter.TRITON_ERROR_CODES, f"{error.__name__} ({error.code}) has no Triton code"
    assert set(adapter.TRITON_ERROR_CODES.values()) | {adapter.FALLBACK_ERROR_CODE} <= set(TRITON_CODES)


def test_error_table_names_exist_in_the_real_stub(adapter: types.ModuleType) -> None:
    try:
        dist = serve.locate_dist()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    binary = dist.stub.read_bytes()
    for name in {*adapter.TRITON_ERROR_CODES.values(), adapter.FALLBACK_ERROR_CODE}:
        assert b"\0" + name.encode() + b"\0" in binary, name


@pytest.mark.parametrize("error", ALL_ERRORS)
def test_triton_error_carries_the_core_json(adapter: types.ModuleType, error: type[NerError]) -> None:
    body = error("why").to_json()
    made = adapter.triton_error(body)
    assert json.loads(made.message()) == body
    assert made.code() == getattr(FakeTritonError, adapter.TRITON_ERROR_CODES[error.code])


# -- settings from config.pbtxt parameters -------------------------------------------------------


def test_settings_from_parameters(adapter: types.ModuleType) -> None:
    params = {"model_dir": "model", "model_version_label": "2.0", "max_chars": "10", "dtype": "bfloat16"}
    settings = adapter.settings_from_parameters(params, kind="CPU", device_id="0")
    assert (settings.max_chars, settings.dtype, settings.device) == (10, "bfloat16", "cpu")
    assert adapter.settings_from_parameters({}, kind="GPU", device_id="1").device == "cuda:1"


@pytest.mark.parametrize("params", [{"max_char": "10"}, {"device": "cuda:0"}, {"max_chars": "many"}])
def test_bad_parameters_are_refused(adapter: types.ModuleType, params: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        adapter.settings_from_parameters(params, kind="CPU", device_id="0")


def test_builder_and_adapter_agree_on_their_own_parameters(adapter: types.ModuleType) -> None:
    assert tuple(adapter.ADAPTER_PARAMETERS) == tuple(build_repo.ADAPTER_PARAMETERS)


# -- execute: one response per request, errors only where they belong -----------------------------


def _expected(pipeline: Pipeline, text: str, options: bytes | None = None) -> dict[str, Any]:
    parsed = parse_request(text, content_type="text/plain", options=options, max_texts=64)
    status, body = render_response(
        parsed, pipeline.predict(parsed.documents), {"model": "ja_ner", "model_version": "1.0"}
    )
    assert status == 200
    return body


def test_a_bad_request_fails_alone_in_its_batch(instance: Any) -> None:
    texts = ["鈴木は熊本県に住む", "田中さんは𠮷野家でトヨタの車を見た"]
    utf16 = b'{"offsets": "utf16"}'
    requests = [
        FakeRequest([texts[0]]),
        FakeRequest([b"\xff\xfe not utf-8"]),
        FakeRequest(texts, [b"", utf16]),
        FakeRequest(["あ" * 41]),  # max_chars is 40 in this repository
        FakeRequest([texts[1]], [b'{"aggregation": "sideways"}']),
        FakeRequest([texts[1]]),
    ]
    responses = instance.execute(requests)
    assert len(responses) == len(requests)
    pipeline = instance.pipeline
    assert responses[0].error is None and responses[0].rows() == [_expected(pipeline, texts[0])]
    assert responses[1].error_json()["code"] == 400 and responses[1].error.code() == FakeTritonError.INVALID_ARG
    assert responses[2].rows() == [_expected(pipeline, texts[0]), _expected(pipeline, texts[1], utf16)]
    too_large = responses[3].error_json()
    assert (too_large["code"], too_large["type"]) == (413, "InputTooLarge")
    assert responses[3].error.code() == FakeTritonError.INVALID_ARG
    assert "sideways" in responses[4].error_json()["message"]
    assert responses[5].rows() == [_expected(pipeline, texts[1])]


def test_single_answers_are_the_rest_json(instance: Any) -> None:
    (row,) = instance.execute([FakeRequest(["鈴木は熊本県に住む"])])[0].rows()
    assert set(row) == {"model", "model_version", "entities", "truncated"}
    assert (row["model"], row["model_version"]) == ("ja_ner", "1.0")
    for entity in row["entities"]:
        assert "鈴木は熊本県に住む"[entity["start"] : entity["end"]] == entity["text"]


def test_a_text_that_looks_like_json_stays_text(instance: Any) -> None:
    text = '{"text": "x"}'
    (row,) = instance.execute([FakeRequest([text])])[0].rows()
    assert row == _expected(instance.pipeline, text)


def test_row_errors_name_the_row(instance: Any) -> None:
    (response,) = instance.execute([FakeRequest(["ok", "あ" * 41])])
    assert response.error_json()["message"].startswith("row 1: ")
    (response,) = instance.execute([FakeRequest(["ok", "ok"], [b"{}", b"[1]"])])
    assert response.error_json()["message"].startswith("row 1: ")


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (FakeRequest(None), "TEXT is required"),
        (FakeRequest(["a", "b"], [b"{}"]), "OPTIONS has 1 rows"),
        (FakeRequest(["a"], [b"{not json"]), "malformed JSON"),
        (FakeRequest(["a"], [b'{"colour": 1}']), "colour"),
    ],
)
def test_malformed_requests(instance: Any, request_: FakeRequest, needle: str) -> None:
    (response,) = instance.execute([request_])
    body = response.error_json()
    assert body["code"] == 400 and needle in body["message"]


def test_stage_metrics_count_documents_and_time(instance: Any) -> None:
    def total(name: str) -> float:
        return sum(v for (n, _), v in FakeMetricFamily.values.items() if n == name)

    before = total("ja_ner_documents_total"), total("ja_ner_stage_ms_total")
    instance.execute([FakeRequest(["鈴木は熊本県に住む", "東京"]), FakeRequest([b"\xff"]), FakeRequest(["大阪"])])
    assert total("ja_ner_documents_total") - before[0] == 3  # the bad request never reaches the pipeline
    assert total("ja_ner_stage_ms_total") > before[1]
    stages = {dict(labels)["stage"] for (n, labels) in FakeMetricFamily.values if n == "ja_ner_stage_ms_total"}
    assert {"encode", "forward"} <= stages


def test_entities_are_counted_per_type(instance: Any) -> None:
    def per_type() -> dict[str, float]:
        return {dict(k)["type"]: v for (n, k), v in FakeMetricFamily.values.items() if n == "ja_ner_entities_total"}

    before = per_type()
    (response,) = instance.execute([FakeRequest(["鈴木は熊本県に住む", "東京の大阪"])])
    found = [e["type"] for row in response.rows() for e in row["entities"]]
    assert found  # the tiny random model tags plenty
    after = per_type()
    assert {t: after.get(t, 0.0) - before.get(t, 0.0) for t in after if after[t] != before.get(t, 0.0)} == {
        t: float(found.count(t)) for t in set(found)
    }


def test_a_failing_forward_fails_only_the_request_that_still_fails(
    instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same policy as the TorchServe handler (tests/unit/test_handler.py): retried one by one."""
    forward = instance.pipeline.forward
    poison = instance.pipeline.tokenizer("毒", add_special_tokens=False)["input_ids"][-1]

    def flaky(batch: Any) -> Any:
        if (batch.input_ids == poison).any():
            raise RuntimeError("simulated forward failure")
        return forward(batch)

    monkeypatch.setattr(instance.pipeline, "forward", flaky)
    responses = instance.execute([FakeRequest(["東京"]), FakeRequest(["毒"]), FakeRequest(["大阪"])])
    assert responses[0].error is None and responses[2].error is None
    assert responses[1].error_json()["type"] == "Internal"
    assert responses[1].error.code() == FakeTritonError.INTERNAL


def test_core_errors_from_the_pipeline_map_per_request(instance: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = instance.pipeline.predict_timed

    def second_too_large(docs: list[Any]) -> tuple[list[object], Any]:
        outcomes, times = real(docs)
        outcomes[1] = InputTooLarge("too big")
        return outcomes, times

    monkeypatch.setattr(instance.pipeline, "predict_timed", second_too_large)
    responses = instance.execute([FakeRequest(["a"]), FakeRequest(["b"]), FakeRequest(["c"])])
    assert responses[0].error is None and responses[2].error is None
    assert responses[1].error_json() == {"code": 413, "type": "InputTooLarge", "message": "too big"}


def test_hostile_options_and_unreadable_requests_fail_alone(instance: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22: the Triton adapter answers through the same data plane (limits, containment) as TorchServe."""
    deep = b'{"aggregation": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    broken = FakeRequest(["a"])
    monkeypatch.setattr(broken.tensors["TEXT"], "as_numpy", lambda: 1 / 0)  # the adapter's own reading fails
    good = [FakeRequest(["鈴木は熊本県に住む"]), FakeRequest(["東京"])]
    responses = instance.execute([good[0], FakeRequest(["a"], [deep]), broken, good[1]])
    assert responses[0].rows() == [_expected(instance.pipeline, "鈴木は熊本県に住む")]
    assert responses[3].rows() == [_expected(instance.pipeline, "東京")]
    nested = responses[1].error_json()
    assert nested["code"] == 400 and "levels deep; the limit is 8" in nested["message"]
    assert responses[2].error_json()["type"] == "Internal" and responses[2].error.code() == FakeTritonError.INTERNAL


def test_busy_admission_reaches_triton(instance: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """max_batch_chars lives in the data plane: a Triton request that does not fit its batch gets 503 Busy alone."""
    from dataclasses import replace

    small = replace(instance.pipeline.settings, max_request_chars=40, max_batch_chars=60)
    monkeypatch.setattr(instance.pipeline, "settings", small)
    responses = instance.execute([FakeRequest(["東" * 40]), FakeRequest(["京" * 30]), FakeRequest(["大" * 10])])
    assert responses[0].error is None and responses[2].error is None
    busy = responses[1].error_json()
    assert (busy["code"], busy["type"]) == (503, "Busy") and responses[1].error.code() == FakeTritonError.UNAVAILABLE


# -- repository builder -----------------------------------------------------------------------------


def test_repository_layout(model_root: Path, tiny_model_dir: Path) -> None:
    root = model_root
    assert (root / "config.pbtxt").is_file()
    assert (root / "1" / "model.py").read_bytes() == ADAPTER.read_bytes()
    assert (root / "1" / "ja_ner" / "pipeline.py").is_file()
    assert not (root / "1" / "ja_ner" / "client").exists()
    model = root / "1" / "model"  # links to the model's files, and the graph ONNX Runtime serves
    assert (model / "config.json").resolve() == (tiny_model_dir / "config.json").resolve()
    assert (model / "model.onnx").is_file() and not (tiny_model_dir / "model.onnx").exists()


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_rendered_config_is_a_valid_model_config(kind: str) -> None:
    spec = build_repo.RepoSpec(kind=kind, gpus=(0, 1) if kind == "gpu" else (), settings={"dtype": "bfloat16"})
    config = json.loads(model_config_json(build_repo.render_config(spec)))
    assert config["backend"] == "python" and config["max_batch_size"] == 32
    assert int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == 2000
    assert [(i["name"], i["data_type"], i.get("optional", False)) for i in config["input"]] == [
        ("TEXT", "TYPE_STRING", False),
        ("OPTIONS", "TYPE_STRING", True),
    ]
    assert [(o["name"], o["data_type"]) for o in config["output"]] == [("ENTITIES_JSON", "TYPE_STRING")]
    (group,) = config["instance_group"]
    assert group["kind"] == ("KIND_GPU" if kind == "gpu" else "KIND_CPU")
    assert group.get("gpus", []) == ([0, 1] if kind == "gpu" else [])
    params = {k: v["string_value"] for k, v in config["parameters"].items()}
    assert params == {"model_dir": "model", "model_version_label": "1.0", "dtype": "bfloat16"}


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": "tpu"}, {"gpus": (0,)}, {"max_batch_size": 0}, {"settings": {"device": "cpu"}}, {"settings": {"x": "1"}}],
)
def test_bad_specs_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, NerError)):
        build_repo.RepoSpec(**kwargs)


def test_new_version_next_to_the_old_and_copy_mode(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "repo"
    build_repo.build_repo(tiny_model_dir, out)
    build_repo.build_repo(tiny_model_dir, out, version=2, copy_model=True, keep_versions=True)
    assert (out / "ja_ner" / "1" / "model" / "config.json").is_symlink()
    copied = out / "ja_ner" / "2" / "model"
    assert copied.is_dir() and not copied.is_symlink() and (copied / "config.json").is_file()
    assert not (copied / "config.json").is_symlink() and (copied / "model.onnx").is_file()
    build_repo.build_repo(tiny_model_dir, out, version=3)
    assert sorted(p.name for p in (out / "ja_ner").iterdir()) == ["3", "config.pbtxt"]


def test_builder_refuses_foreign_directories_and_non_models(tmp_path: Path, tiny_model_dir: Path) -> None:
    (tmp_path / "repo" / "ja_ner").mkdir(parents=True)
    (tmp_path / "repo" / "ja_ner" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_repo.build_repo(tiny_model_dir, tmp_path / "repo")
    assert (tmp_path / "repo" / "ja_ner" / "precious.txt").exists()
    with pytest.raises(FileNotFoundError):
        build_repo.build_repo(tmp_path, tmp_path / "other")


def test_builder_cli_prints_the_gpu_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_repo.main(["--model", "unused", "--kind", "gpu", "--gpus", "0", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "kind: KIND_GPU" in out and "gpus: [ 0 ]" in out


# -- launcher ---------------------------------------------------------------------------------------


def test_launcher_binds_every_endpoint_to_the_host(tmp_path: Path) -> None:
    try:
        dist = serve.locate_dist()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    command = serve.server_command(
        dist, model_repository=tmp_path, backends_dir=tmp_path, host="127.0.0.1", ports=serve.Ports(1, 2, 3)
    )
    for flag in ("--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1"):
        assert flag in command
    assert {"--http-port=1", "--grpc-port=2", "--metrics-port=3"} <= set(command)


def test_backend_dir_gets_the_stub_next_to_the_library(tmp_path: Path) -> None:
    try:
        dist = serve.locate_dist()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    backends = serve.prepare_backends(dist, tmp_path / "backends")
    python = backends / "python"
    assert (python / "libtriton_python.so").is_file()
    stub = python / serve.STUB_NAME
    assert stub.is_file() and stub.stat().st_mode & 0o111
    env = serve.server_env(dist, base={"PATH": "/usr/bin"})
    assert str(dist.libs) in env["LD_LIBRARY_PATH"].split(":")
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_settings_defaults_survive_the_round_trip() -> None:
    # The builder writes no setting unless asked, so the server runs with Settings() defaults.
    config = json.loads(model_config_json(build_repo.render_config(build_repo.RepoSpec())))
    values = {k: v["string_value"] for k, v in config["parameters"].items() if k not in build_repo.ADAPTER_PARAMETERS}
    assert Settings.from_mapping(values) == Settings()


def test_make_targets_pass_their_variables_to_the_builder(tiny_model_dir: Path) -> None:
    variables = [f"MODEL={tiny_model_dir}", "TRITON_KIND=gpu", "TRITON_MAX_BATCH=8", "TRITON_QUEUE_DELAY_US=500"]
    result = subprocess.run(
        ["make", "-s", "triton-config", *variables, "VERSION=2.5"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(model_config_json(result.stdout))
    assert config["max_batch_size"] == 8 and int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == 500
    assert config["instance_group"][0]["kind"] == "KIND_GPU"
    assert config["parameters"]["model_version_label"]["string_value"] == "2.5"
    dry = subprocess.run(
        ["make", "-n", "triton-serve", "TRITON_HTTP_PORT=9100", "TRITON_HOST=127.0.0.2"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert "--http-port 9100" in dry.stdout and "--host 127.0.0.2" in dry.stdout


def test_only_the_adapter_imports_triton_utilities() -> None:
    for package in ("ja_ner", "handler"):
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "triton_python_backend_utils" not in text and "tritonclient" not in text, path
