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


class BatchClient(FakeClient):
    """Answers a batch unless it holds a text marked bad: then the service refuses the whole batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def predict(self, text, **options):
        self.calls.append(("predict", text, options))
        if "BAD" in text:
            raise NerClientError(413, "InputTooLarge", "text has too many characters")
        return Prediction((Entity("PER", "鈴木", 0, 2, 0.97),), False, "ja_ner", "1.0")

    def predict_batch(self, texts, **options):
        self.batches.append(list(texts))
        if any("BAD" in t for t in texts):
            raise NerClientError(413, "InputTooLarge", "text has too many characters")
        return [self.predict(t, **options) for t in texts]


@pytest.fixture
def batch_client(monkeypatch):
    client = BatchClient()
    monkeypatch.setattr(cli, "make_client", lambda args: client)
    return client


def test_lines_are_sent_in_client_batches_and_written_as_json_lines(batch_client):
    lines = "\n".join(f"鈴木 {i}" for i in range(5)) + "\n\n"
    code, out = run(["--lines", "--batch-size", "2", "--format", "hf", "--no-progress"], stdin=lines)
    assert code == 0
    assert batch_client.batches == [["鈴木 0", "鈴木 1"], ["鈴木 2", "鈴木 3"], ["鈴木 4"]]
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5] and records[2]["text"] == "鈴木 2"
    assert records[0]["entities"] == [{"entity_group": "PER", "score": 0.97, "word": "鈴木", "start": 0, "end": 2}]
    assert batch_client.calls[0][2] == {"format": "hf"}


def test_jsonl_keeps_fields_and_a_refused_text_fails_only_its_line(batch_client):
    stdin = '{"id": "a", "text": "鈴木"}\n"鈴木 BAD"\nnot json\n{"id": 3}\n'
    code, out = run(["--jsonl", "--no-progress"], stdin=stdin)
    assert code == 1  # some texts failed
    first, bad, not_json, no_text = (json.loads(line) for line in out.splitlines())
    assert first["id"] == "a" and first["entities"][0]["type"] == "PER"
    assert bad["error"]["type"] == "InputTooLarge" and "entities" not in bad
    assert not_json["line"] == 3 and not_json["error"]["type"] == "InvalidInputLine"
    assert no_text == {"line": 4, "error": no_text["error"]} and "text" in no_text["error"]["message"]
    assert [c[1] for c in batch_client.calls] == ["鈴木", "鈴木 BAD"]  # the refused batch, text by text


def test_many_texts_from_a_file_to_an_output_file(batch_client, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("鈴木\n熊本\n", encoding="utf-8")
    target = tmp_path / "out.jsonl"
    code, out = run(["--lines", "--file", str(source), "-o", str(target), "--no-progress"])
    assert (code, out) == (0, "")
    assert [json.loads(line)["text"] for line in target.read_text(encoding="utf-8").splitlines()] == ["鈴木", "熊本"]


def test_progress_bar_goes_to_stderr(batch_client, capsys):
    code, out = run(["--lines", "--progress"], stdin="鈴木\n熊本\n")
    assert code == 0 and len(out.splitlines()) == 2
    assert "ja-ner: 2text" in capsys.readouterr().err  # stdin: no total known


def test_hf_json_output_for_one_text(fake):
    code, out = run(["--json", "--format", "hf", TEXT])
    assert code == 0
    assert json.loads(out)[1] == {"entity_group": "LOC", "score": 0.912, "word": "熊本県", "start": 3, "end": 6}


def test_unreachable_server_is_one_line_naming_the_url_and_make_serve(caplog, capsys):
    code = cli.main(["--url", "http://127.0.0.1:9", "鈴木"], stdout=io.StringIO())
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "cannot reach a ja-ner server at http://127.0.0.1:9 (Connection refused); start one with `make serve` "
        "(or pass --url)"
    ]
    assert "Traceback" not in capsys.readouterr().err
