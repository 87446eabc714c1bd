"""The ja-ner CLI: argument handling, input sources and output formats (client faked)."""

from __future__ import annotations

import io
import json

import pytest

from ja_ner.client import cli
from ja_ner.client.results import NerClient, NerClientError, Prediction
from ja_ner.types import Entity

TEXT = "鈴木は熊本県に住む"
FINAL = Prediction((Entity("PER", "鈴木", 0, 2, 0.97), Entity("LOC", "熊本県", 3, 6, 0.912)), False, "ja_ner", "1.0")


class FakeClient(NerClient):
    def __init__(self, error: NerClientError | None = None) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.error = error

    def predict(self, text, **options):
        self.calls.append(("predict", text, options))
        if self.error:
            raise self.error
        return FINAL

    def predict_batch(self, texts, **options):
        raise AssertionError("not used by the CLI")

    def stream(self, text, **options):
        self.calls.append(("stream", text, options))
        for i, e in enumerate(FINAL.entities):
            yield Prediction((e,), False, "ja_ner", "1.0", partial=True, window=i)
        yield FINAL

    def ping(self):
        return True

    def close(self):
        pass


@pytest.fixture
def fake(monkeypatch):
    client = FakeClient()
    made = []

    def make(args):
        made.append(args)
        return client

    monkeypatch.setattr(cli, "make_client", make)
    client.made = made
    return client


def run(argv, stdin=""):
    out = io.StringIO()
    code = cli.main(argv, stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_table_has_header_and_aligned_rows(fake):
    code, out = run([TEXT])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["entity", "type", "span", "score"]
    assert lines[1].split() == ["鈴木", "PER", "0-2", "0.970"]
    assert lines[2].split() == ["熊本県", "LOC", "3-6", "0.912"]
    # wide characters count two columns: the type column starts at the same column on every row
    assert len({cli._width(line[: line.index(t)]) for line, t in zip(lines, ["type", "PER", "LOC"], strict=True)}) == 1


def test_json_output_and_options_are_passed(fake):
    code, out = run(["--json", "--aggregation", "max", "--offsets", "utf16", "--min-score", "0.5", TEXT])
    assert code == 0
    body = json.loads(out)
    assert body["entities"][1] == {"type": "LOC", "text": "熊本県", "start": 3, "end": 6, "score": 0.912}
    assert "partial" not in body
    assert fake.calls == [("predict", TEXT, {"aggregation": "max", "offsets": "utf16", "min_score": 0.5})]


def test_text_from_file_and_stdin(fake, tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("東京の話", encoding="utf-8")
    assert run(["--file", str(doc)])[0] == 0
    assert run([], stdin="大阪の話")[0] == 0
    assert [c[1] for c in fake.calls] == ["東京の話", "大阪の話"]


def test_stream_json_prints_one_line_per_message(fake):
    code, out = run(["--grpc", "--stream", "--json", TEXT])
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [m.get("partial", False) for m in lines] == [True, True, False]
    assert lines[0]["window"] == 0


def test_stream_table_prints_windows_then_a_count(fake):
    code, out = run(["--grpc", "--stream", TEXT])
    assert code == 0
    assert out.count("# window") == 2 and out.rstrip().endswith("# 2 entities")


def test_service_error_exits_1_with_message_on_stderr(fake, caplog):
    fake.error = NerClientError(400, "InvalidInput", "bad option")
    code, out = run([TEXT])
    assert code == 1 and out == ""
    assert "InvalidInput (400): bad option" in caplog.text


def test_empty_input_and_missing_file_exit_2(fake, tmp_path):
    assert run([], stdin="  \n")[0] == 2
    assert run(["--file", str(tmp_path / "missing.txt")])[0] == 2
    assert fake.calls == []


def test_flags_reach_the_client_factory(fake, monkeypatch):
    monkeypatch.setenv(cli.TOKEN_ENV, "from-env")
    run(["--grpc", "--target", "h:1", "--tls-ca", "ca.pem", TEXT])
    args = fake.made[-1]
    assert (args.grpc, args.target, args.tls_ca, args.token) == (True, "h:1", "ca.pem", "from-env")


def test_make_client_builds_the_requested_transport(tmp_path):
    rest = cli.make_client(cli.build_parser().parse_args(["--url", "http://x:1", "--token", "t", "a"]))
    assert type(rest).__name__ == "RestClient" and rest.url == "http://x:1"
    grpc_client = cli.make_client(cli.build_parser().parse_args(["--grpc", "--target", "127.0.0.1:1", "a"]))
    assert type(grpc_client).__name__ == "GrpcClient"
    rest.close()
    grpc_client.close()


def test_timing_logs_first_and_final_message_latency(fake, caplog):
    caplog.set_level("INFO", logger="ja_ner.client.cli")
    assert run(["--grpc", "--stream", "--timing", TEXT])[0] == 0
    assert "first message after" in caplog.text and "final message after" in caplog.text
    assert "3 messages" in caplog.text
