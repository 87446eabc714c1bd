"""The server-side view from Prometheus scrapes, and the runner's pure helpers."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from loadtest import prom
from loadtest.run import locust_command, markdown_table, normalise_host, parse_args

# The shape TorchServe 0.12 serves on :8082/metrics (note the trailing comma in the labels).
BEFORE = """\
# HELP ts_inference_requests_total Torchserve prometheus counter metric with unit: Count
# TYPE ts_inference_requests_total counter
ts_inference_requests_total{model_name="ja_ner",model_version="default",hostname="vm",} 10.0
ts_inference_requests_total{model_name="other",model_version="default",hostname="vm",} 500.0
# TYPE ts_queue_latency_microseconds counter
ts_queue_latency_microseconds{model_name="ja_ner",model_version="default",hostname="vm",} 1000.0
# TYPE ts_inference_latency_microseconds counter
ts_inference_latency_microseconds{model_name="ja_ner",model_version="default",hostname="vm",} 500000.0
# TYPE NerBatches counter
NerBatches{ModelName="ja_ner",Level="Model",Hostname="vm",} 5.0
NerBatchRequests{ModelName="ja_ner",Level="Model",Hostname="vm",} 10.0
# TYPE NerStageSeconds histogram
NerStageSeconds_bucket{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="forward",le="+Inf",} 5.0
NerStageSeconds_count{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="forward",} 5.0
NerStageSeconds_sum{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="forward",} 0.1
"""
AFTER = """\
ts_inference_requests_total{model_name="ja_ner",model_version="default",hostname="vm",} 110.0
ts_inference_requests_total{model_name="other",model_version="default",hostname="vm",} 900.0
ts_queue_latency_microseconds{model_name="ja_ner",model_version="default",hostname="vm",} 201000.0
ts_inference_latency_microseconds{model_name="ja_ner",model_version="default",hostname="vm",} 5500000.0
QueueTime{Level="Host",Hostname="vm",} 3.0
PredictionTime{ModelName="ja_ner",Level="Model",Hostname="vm",} 40.5
NerBatches{ModelName="ja_ner",Level="Model",Hostname="vm",} 30.0
NerBatchRequests{ModelName="ja_ner",Level="Model",Hostname="vm",} 110.0
NerDocuments{ModelName="ja_ner",Level="Model",Hostname="vm",} 250.0
NerForwardPasses{ModelName="ja_ner",Level="Model",Hostname="vm",} 50.0
# TYPE NerStageSeconds histogram
NerStageSeconds_bucket{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="forward",le="0.1",} 12.0
NerStageSeconds_bucket{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="forward",le="+Inf",} 30.0
NerStageSeconds_count{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="forward",} 30.0
NerStageSeconds_sum{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="forward",} 2.6
NerStageSeconds_bucket{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="encode",le="+Inf",} 30.0
NerStageSeconds_count{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="encode",} 30.0
NerStageSeconds_sum{ModelName="ja_ner",Level="Model",Hostname="vm",Stage="encode",} 0.25
"""


def test_parse_reads_labels_and_skips_comments() -> None:
    samples = prom.parse(BEFORE + 'garbage line\nname{a="1"} not-a-number\n')
    assert len(samples) == 9
    first = samples[0]
    assert first.name == "ts_inference_requests_total" and first.value == 10.0
    assert first.label("model_name") == "ja_ner" and first.label("hostname") == "vm"
    assert prom.parse('x{msg="a \\"quoted\\", b"} 1')[0].label("msg") == 'a "quoted", b'  # escapes undone


def test_server_view_deltas_for_one_model() -> None:
    view = prom.server_view(BEFORE, AFTER, "ja_ner")
    assert view["available"] is True
    assert view["requests"] == 100.0  # the other model's requests are not counted
    assert view["mean_queue_latency_ms"] == 2.0
    assert view["mean_inference_latency_ms"] == 50.0
    assert view["last_gauges_ms"] == {"QueueTime": 3.0, "PredictionTime": 40.5}
    batching = view["batching"]
    assert batching["batches"] == 25.0
    assert batching["mean_requests_per_batch"] == 4.0
    assert batching["mean_documents_per_batch"] == 10.0  # no NerDocuments before: counted from 0
    assert batching["mean_stage_ms_per_batch"] == {"encode": 10.0, "forward": 100.0}


def test_server_view_latencies_are_over_rest_requests_only() -> None:
    """TorchServe 0.12 adds to the latency counters for REST jobs only, not gRPC ones."""
    view = prom.server_view(BEFORE, AFTER, "ja_ner", rest_requests=40)
    assert view["requests"] == 100.0 and view["latency_over_rest_requests"] == 40
    assert view["mean_queue_latency_ms"] == 5.0 and view["mean_inference_latency_ms"] == 125.0
    grpc_only = prom.server_view(BEFORE, AFTER, "ja_ner", rest_requests=0)
    assert grpc_only["mean_queue_latency_ms"] is None and grpc_only["mean_inference_latency_ms"] is None


def test_server_view_without_metrics_or_handler_counters() -> None:
    assert prom.server_view(BEFORE, None, "ja_ner")["available"] is False
    view = prom.server_view(None, AFTER.split("NerBatches")[0], "ja_ner")
    assert view["requests"] == 110.0
    assert view["batching"]["batches"] is None and "note" in view["batching"]


def test_scrape_of_a_dead_port_is_none() -> None:
    assert prom.scrape("http://127.0.0.1:9/metrics", timeout=1.0) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080"),
        ("localhost:9000", "http://localhost:9000"),
        ("http://10.0.0.5:8080/", "http://10.0.0.5:8080"),
        ("https://ner.example.com", "https://ner.example.com:443"),
    ],
)
def test_normalise_host(given: str, expected: str) -> None:
    assert normalise_host(given) == expected


def test_locust_command_scales_users_per_protocol(tmp_path: Path) -> None:
    args = parse_args(
        ["--users", "16", "--spawn-rate", "4", "--run-time", "60s", "--corpus", "x.txt", "--locust-arg=--ja-seed=3"]
    )
    cmd = locust_command(args, "http://h:8080", "h:7070", tmp_path)
    assert cmd[cmd.index("--users") + 1] == "32" and cmd[cmd.index("--spawn-rate") + 1] == "8"
    assert cmd[-2:] == ["RestUser", "GrpcUser"] and "--headless" in cmd and "--ja-seed=3" in cmd
    assert cmd[cmd.index("--ja-corpus") + 1] == str(Path("x.txt").resolve())
    grpc_only = locust_command(parse_args(["--protocol", "grpc", "--users", "5"]), "http://h:8080", "h:7070", tmp_path)
    assert grpc_only[-1] == "GrpcUser" and grpc_only[grpc_only.index("--users") + 1] == "5"


def test_parse_args_rejects_bad_users() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--users", "0"])
    assert isinstance(parse_args([]), argparse.Namespace)


def test_markdown_table() -> None:
    fig = {
        "requests": 10,
        "failures": 0,
        "rps": 5.0,
        "p50_ms": 10.4,
        "p90_ms": 20.0,
        "p95_ms": 30.0,
        "p99_ms": 40.0,
        "max_ms": 50.0,
    }
    summary = {
        "client": {
            "endpoints": [{"protocol": "REST", "name": "/p [text]", **fig}],
            "protocols": {"REST": fig},
            "total": fig,
        }
    }
    lines = markdown_table(summary).splitlines()
    assert lines[0].startswith("| endpoint | requests |")
    assert lines[2] == "| REST /p [text] | 10 | 0 | 5.0 | 10 | 20 | 30 | 40 | 50 |"
    assert lines[-1].startswith("| **all** |")
