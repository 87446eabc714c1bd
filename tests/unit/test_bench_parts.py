"""bench.run variants, bench.ceiling batching, bench.pyspy summaries and bench.client on a local server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from bench import ceiling, client, pyspy
from bench.run import parse_variant
from bench.texts import load_texts


def test_parse_variant_splits_handler_and_top_level_keys() -> None:
    mode = parse_variant("w2:minWorkers=2,maxWorkers=2,handler.threads=1,handler.dtype=bfloat16")
    assert mode.name == "w2" and mode.kind == "ours"
    assert mode.overrides == {"minWorkers": 2, "maxWorkers": 2, "handler": {"threads": 1, "dtype": "bfloat16"}}
    assert parse_variant("plain").overrides == {}


@pytest.mark.parametrize("spec", ["", ":batchSize=2", "ours:batchSize=2", "x:batchSize", "bad name:a=1"])
def test_parse_variant_refuses_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_variant(spec)


def test_ceiling_batches_sorted_by_length() -> None:
    assert ceiling.batches([5, 1, 3, 2, 4], 2) == [[1, 3], [2, 4], [0]]
    assert ceiling.batches([2, 2, 2], 8) == [[0, 1, 2]]


def test_ceiling_measures_a_tiny_model(tiny_model_dir) -> None:
    texts = ["鈴木は熊本県に住む", "東京", "株式会社ソニーの本社は東京都港区にある。"]
    result = ceiling.measure(tiny_model_dir, texts, batch_sizes=(1, 2), threads=(1,), single_texts=2)
    assert set(result.throughput) == {"t1 B1", "t1 B2"} and all(v > 0 for v in result.throughput.values())
    assert result.threads == result.single_threads == 1
    assert result.best_throughput == max(result.throughput.values())
    assert result.best_per_core == max(result.per_core.values()) > 0
    assert result.single_ms_p50 > 0 and result.texts == 3
    with pytest.raises(ValueError):
        ceiling.measure(tiny_model_dir, texts, dtype="int4")


def test_pyspy_summary_buckets_innermost_match_and_idle() -> None:
    collapsed = "\n".join(
        [
            "<module> (model_service_worker.py:1);handle (handler.py:60);__call__ (forward.py:50);"
            "forward (torch/nn/modules/linear.py:125) 60",
            "<module> (model_service_worker.py:1);handle (handler.py:60);encode (encode.py:30);"
            "__call__ (tokenization_utils_base.py:2800) 20",
            "<module> (model_service_worker.py:1);handle_connection (model_service_worker.py:180);"
            "retrieve_msg (ts/protocol/otf_message_handler.py:33);"
            "_retrieve_buffer (ts/protocol/otf_message_handler.py:181) 15",
            "Thread._bootstrap (threading.py:1002);TMonitor.run (tqdm/_monitor.py:69);wait (threading.py:629) 500",
            "<module> (model_service_worker.py:1);something (x.py:1) 5",
        ]
    )
    summary = pyspy.summarise(collapsed)
    assert summary["samples"] == 100
    assert summary["buckets"]["model forward (torch)"] == 0.6
    assert summary["buckets"]["tokenizer"] == 0.2
    assert summary["buckets"]["idle (waiting for a batch)"] == 0.15
    assert summary["buckets"]["TorchServe protocol + socket"] == 0.05  # model_service_worker frame
    assert summary["top_leaves"][0] == ("forward (torch/nn/modules/linear.py:125)", 0.6)
    assert pyspy.summarise("") == {"samples": 0, "buckets": {}, "top_leaves": []}


def test_load_texts_from_a_txt_and_jsonl(tmp_path) -> None:
    txt = tmp_path / "t.txt"
    txt.write_text("# comment\n東京\n\n大阪\n", encoding="utf-8")
    assert load_texts(source=txt)[0] == ["東京", "大阪"]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"text": "東京"}\n{"text": "大阪"}\n{"text": "京都"}\n', encoding="utf-8")
    texts, source = load_texts(limit=2, source=jsonl)
    assert texts == ["東京", "大阪"] and "2 texts" in source


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as TorchServe

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 500 if body == "失敗".encode() else 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def echo_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/predictions/x"
    server.shutdown()


def test_closed_loop_client_counts_requests_and_errors(echo_url: str) -> None:
    result = client.run_level(echo_url, ["東京", "大阪"], 4, seconds=0.5, warmup=0.1)
    assert result.users == 4 and result.requests > 10 and result.errors == 0
    assert result.throughput == pytest.approx(result.requests / result.seconds, rel=0.01)
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms
    assert result.cpu == {}
    metered = client.run_level(echo_url, ["東京"], 2, seconds=0.3, warmup=0.05, cpu_meter=client.CpuMeter(None))
    assert set(metered.cpu) == {"frontend", "workers", "client", "others"} and metered.cpu["client"] >= 0
    failing = client.run_level(echo_url, ["失敗"], 2, seconds=0.3, warmup=0.05)
    assert failing.requests == 0 and failing.errors > 0


def test_write_adds_summaries_and_a_noise_note(tmp_path) -> None:
    from bench.run import write

    lv = {"users": 1, "throughput": 10.0, "p50_ms": 90.0, "p90_ms": 95.0, "p99_ms": 99.0, "other_cores": 1.2}
    results = {
        "timestamp": "t",
        "quick": True,
        "texts": "x",
        "settings": {"users": [1], "seconds": 1, "warmup": 1},
        "machine": {"cores": 2, "cpu": "c"},
        "cases": [{"case": "default", "model": "m", "runs": {"ours": [lv]}}],
    }
    text = write(results, tmp_path / "out")
    assert (tmp_path / "out" / "results.json").is_file() and (tmp_path / "out" / "results.md").read_text() == text
    assert "default" in results["summaries"] and "1.20 cores" in results["notes"][0]
    assert (tmp_path / "out" / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](results.png)" in text


def _model_log(*plans: tuple[str, str]) -> str:
    """Lines as TorchServe 0.12's model_log.log writes a worker's stdout (one per plan, plus noise)."""
    lines = ["2026-12-04T03:23:17,276 [INFO ] W-34501-ours_1.0-stdout MODEL_LOG - Listening on port: /tmp/.ts.sock"]
    for port, (model, plan) in enumerate(plans, 34501):
        lines.append(f"2026-12-04T03:23:30,552 [INFO ] W-{port}-{model}_1.0-stdout MODEL_LOG - plan: {plan}")
        lines.append(f"2026-12-04T03:23:30,600 [INFO ] W-{port}-{model}_1.0-stdout MODEL_LOG - ja_ner handler ready")
    return "\n".join(lines) + "\n"


def test_issue21_the_served_pair_is_read_from_the_workers_plan_lines() -> None:
    """What the workers logged is what ran: every distinct plan line per model, parsed back into its parts."""
    from bench.run import parse_plan, served_plans
    from ja_ner.plan import Plan

    onnx = Plan("cpu", "onnxruntime", "float32", 1, 1, reason="measured fastest (x); probe: a: b, c; threads auto")
    int8 = Plan("cpu", "torch", "int8", 2, 1, batch_invariant=True, rowwise=True, reason="set explicitly")
    bf16 = Plan("cpu", "torch", "bfloat16", 1, 16, batch_invariant=False, reason="r")
    log = _model_log(("ours", onnx.describe()), ("ours", onnx.describe()), ("torch_int8", int8.describe()))
    found = served_plans(log + _model_log(("bf16", bf16.describe())))
    assert found == {"ours": [onnx.describe()], "torch_int8": [int8.describe()], "bf16": [bf16.describe()]}
    parsed = parse_plan(found["ours"][0])
    assert parsed is not None
    assert (parsed["pair"], parsed["threads"], parsed["rowwise"], parsed["batch_invariant"]) == (
        "onnxruntime/float32",
        1,
        False,
        True,
    )
    assert parsed["reason"] == "measured fastest (x); probe: a: b, c; threads auto"
    assert parse_plan(int8.describe())["pair"] == "int8" and parse_plan(int8.describe())["rowwise"] is True
    assert parse_plan(bf16.describe())["batch_invariant"] is False
    assert parse_plan("ja_ner handler ready") is None and served_plans("no plan here") == {}


def test_plans_of_keeps_ours_modes_and_flags_workers_that_disagree(tmp_path) -> None:
    from bench.run import Mode, _plans_of
    from ja_ner.plan import Plan

    fp32 = Plan("cpu", "torch", "float32", 1, 1, reason="the reference").describe()
    onnx = Plan("cpu", "onnxruntime", "float32", 1, 1, reason="measured fastest").describe()
    log = tmp_path / "model_log.log"
    log.write_text(_model_log(("ours", onnx), ("ours", fp32), ("torch", fp32)))
    modes = [Mode("ours", "ours"), Mode("baseline", "baseline"), Mode("torch", "ours"), Mode("gone", "ours")]
    plans = _plans_of(log, modes)
    assert set(plans) == {"ours", "torch"}  # the baseline logs no plan; "gone" logged none
    assert plans["ours"]["pair"] == "float32" and plans["ours"]["workers_agree"] is False  # the last line counts
    assert plans["torch"]["pair"] == "float32" and plans["torch"]["workers_agree"] is True
    assert _plans_of(tmp_path / "missing.log", modes) == {}


def test_invariance_per_pair_in_process_on_a_tiny_model(tiny_model_dir, tmp_path, monkeypatch) -> None:
    """float32 is batch-invariant: measured once (batched), no changed entity or score."""
    from bench.run import measure_invariance

    monkeypatch.setenv("JA_NER_CACHE", str(tmp_path / "cache"))
    texts = ["鈴木は熊本県に住む", "東京", "株式会社ソニーの本社は東京都港区にある。", "大阪"]
    found = measure_invariance(tiny_model_dir, texts, ("float32",))
    assert set(found) == {"float32"} and set(found["float32"]) == {"texts", "batched"}
    assert found["float32"]["texts"] == 4
    comparisons = found["float32"]["batched"]["comparisons"]
    assert [c["name"] for c in comparisons] == ["client batches of 32", "streamed (final answer)"]
    assert all(c["compared"] == 4 and c["entity_changes"] == c["score_changes"] == 0 for c in comparisons)
    assert found["float32"]["batched"]["plan"].startswith("torch/float32 on cpu")
