"""``ja-ner``: named entities of Japanese texts from a running ja-ner service.

    ja-ner "鈴木は熊本県に住む"                    # one text: a table (--json: the answer)
    ja-ner --file doc.txt --grpc --stream          # one document, windows as they finish
    ja-ner --lines --file texts.txt -o out.jsonl   # many texts, one per line: JSON lines out
    ja-ner --jsonl < docs.jsonl                    # many texts as JSON lines ({"text": ..., ...})
    ja-ner --lines --format hf < texts.txt         # entities as a Hugging Face pipeline lists them

Many texts go to the server in client batches (``--batch-size``) with a progress bar when stderr
is a terminal; each input line gives one output line, in order (input fields kept, ``entities``
added; a text the service refused gets ``error`` instead).

Exit status: 0 answered, 1 the service refused a text or failed or cannot be reached (one line on
stderr), 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from ja_ner.client.results import NerClient, NerClientError, Prediction, ServerUnreachable
from ja_ner.options import OPTIONS
from ja_ner.types import Entity, entity_to_hf

log = logging.getLogger("ja_ner.client.cli")

TOKEN_ENV = "JA_NER_TOKEN"
DEFAULT_BATCH = 32  # texts per client batch; the service's max_texts is 64
REFUSED = (400, 413)  # the service refused a text: reported on its line, the run goes on


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ja-ner",
        description="Find named entities (PER ORG ORG-P ORG-O LOC INS PRD EVT) in Japanese text.",
        epilog=f"The inference token may also come from ${TOKEN_ENV}.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("text", nargs="?", help="text to analyse (default: read --file or stdin)")
    source.add_argument("--file", "-f", help="read the text from this UTF-8 file ('-' for stdin)")
    parser.add_argument("--grpc", action="store_true", help="use the gRPC API instead of REST")
    parser.add_argument("--stream", action="store_true", help="gRPC StreamPredictions: show windows as they finish")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="REST base URL (default: %(default)s)")
    parser.add_argument("--target", default="127.0.0.1:7070", help="gRPC host:port (default: %(default)s)")
    parser.add_argument("--model", default="ja_ner", help="model name (default: %(default)s)")
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV), help="inference key (Bearer token)")
    parser.add_argument("--tls-ca", help="PEM certificate to trust (enables TLS for gRPC)")
    parser.add_argument("--tls-server-name", help="gRPC: host name to check the certificate against")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default: %(default)s)")
    for spec in OPTIONS:  # the request options, from their one definition (ja_ner.options)
        flag = "--" + spec.name.replace("_", "-")
        if spec.kind is bool:
            parser.add_argument(flag, action="store_true", default=None, help=spec.help)
        elif spec.choices:
            parser.add_argument(flag, choices=spec.choices, help=spec.help)
        else:
            parser.add_argument(flag, type=spec.kind, help=spec.help)
    many = parser.add_mutually_exclusive_group()
    many.add_argument("--lines", action="store_true", help="many texts: one per line (blank lines skipped)")
    many.add_argument("--jsonl", action="store_true", help='many texts: JSON lines, {"text": ...} or a string')
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help="texts per request with --lines/--jsonl (default: %(default)s)",
    )
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, help="progress bar on stderr (default: when a terminal)"
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON (one line per stream message)")
    parser.add_argument("--timing", action="store_true", help="log first-message and total latency to stderr")
    parser.add_argument("--verbose", "-v", action="store_true", help="log diagnostics to stderr")
    return parser


def _read_text(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.text is not None:
        return args.text
    if args.file and args.file != "-":
        with open(args.file, encoding="utf-8") as handle:
            return handle.read()
    return stdin.read()


def make_client(args: argparse.Namespace) -> NerClient:
    """The client the arguments ask for."""
    if args.grpc:
        from ja_ner.client.grpc import GrpcClient

        return GrpcClient(
            args.target,
            model=args.model,
            token=args.token,
            tls_ca=args.tls_ca,
            tls_server_name=args.tls_server_name,
            timeout=args.timeout,
        )
    from ja_ner.client.rest import RestClient

    return RestClient(args.url, model=args.model, token=args.token, tls_ca=args.tls_ca, timeout=args.timeout)


def _width(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - _width(text))


def format_table(predictions: Iterable[Prediction]) -> str:
    """Rows ``entity  type  span  score`` (span ``start-end``), one per entity, header first."""
    rows = [("entity", "type", "span", "score")]
    for prediction in predictions:
        for e in prediction.entities:
            text = e.text.replace("\n", " ")
            rows.append((text, e.type, f"{e.start}-{e.end}", f"{e.score:.3f}"))
    widths = [max(_width(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def _entities_json(entities: Iterable[Entity], fmt: str | None) -> list[dict[str, Any]]:
    native = [asdict(e) for e in entities]
    return [entity_to_hf(e) for e in native] if fmt == "hf" else native


def _as_json(prediction: Prediction, fmt: str | None = None) -> str:
    if fmt == "hf" and not prediction.partial:
        return json.dumps(_entities_json(prediction.entities, fmt), ensure_ascii=False)
    body = asdict(prediction)
    body["entities"] = _entities_json(prediction.entities, None)
    if not prediction.partial:
        body.pop("partial")
        body.pop("window")
    return json.dumps(body, ensure_ascii=False)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The request options given on the command line (the flags derived from ja_ner.options)."""
    return {spec.name: getattr(args, spec.name) for spec in OPTIONS if getattr(args, spec.name) is not None}


def _run(client: NerClient, text: str, args: argparse.Namespace, out: TextIO) -> None:
    options = _options(args)
    started = time.perf_counter()
    if not args.stream:
        prediction = client.predict(text, **options)
        if args.timing:
            log.info("answer after %.1f ms (%d characters)", (time.perf_counter() - started) * 1000, len(text))
        out.write(_as_json(prediction, args.format) + "\n" if args.json else format_table([prediction]))
        return
    streamed = False
    for messages, prediction in enumerate(client.stream(text, **options), start=1):
        if args.timing and messages == 1:
            log.info("first message after %.1f ms", (time.perf_counter() - started) * 1000)
        if args.timing and not prediction.partial:
            log.info(
                "final message after %.1f ms: %d messages, %d characters",
                (time.perf_counter() - started) * 1000,
                messages,
                len(text),
            )
        if args.json:
            out.write(_as_json(prediction) + "\n")
        elif prediction.partial:
            out.write(f"# window {prediction.window}\n" + format_table([prediction]))
            streamed = True
        else:
            if not streamed:
                out.write(format_table([prediction]))
            out.write(
                f"# {len(prediction.entities)} entities" + (" (text truncated)" if prediction.truncated else "") + "\n"
            )
        out.flush()


@dataclass(frozen=True)
class Record:
    """One input line of --lines/--jsonl: its number (1-based), its text and the fields to echo."""

    line: int
    text: str | None  # None: the line could not be read (``error`` says why)
    fields: dict[str, Any]
    error: str | None = None


def read_records(lines: Iterable[str], *, jsonl: bool) -> Iterator[Record]:
    """Texts of ``lines``: one per non-blank line, or JSON lines (an object with a string ``text``, or a string).

    A JSON line that cannot be used becomes a Record with ``error`` set; reading goes on.
    """
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if not jsonl:
            yield Record(number, line, {"line": number, "text": line})
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Record(number, None, {"line": number}, f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if isinstance(obj, str):
            yield Record(number, obj, {"line": number, "text": obj})
        elif isinstance(obj, dict) and isinstance(obj.get("text"), str):
            yield Record(number, obj["text"], {"line": number, **obj})
        else:
            yield Record(number, None, {"line": number}, 'expected a JSON string or an object with a string "text"')


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _error_json(code: int, kind: str, message: str) -> dict[str, Any]:
    return {"code": code, "type": kind, "message": message}


def _answer_batch(client: NerClient, texts: list[str], options: dict[str, Any]) -> list[Prediction | NerClientError]:
    """Predictions of ``texts`` in one request. When the service refuses the batch (one bad or too
    large text fails it whole), each text is sent alone, so only the refused ones carry an error.

    Raises:
        NerClientError: anything but a refusal of the texts (unreachable, 5xx, bad token...).
    """
    try:
        return list(client.predict_batch(texts, **options))
    except NerClientError as exc:
        if exc.code not in REFUSED or len(texts) == 1:
            return [_refused_or_raise(exc)]
    return [_answer_one(client, text, options) for text in texts]


def _answer_one(client: NerClient, text: str, options: dict[str, Any]) -> Prediction | NerClientError:
    try:
        return client.predict(text, **options)
    except NerClientError as exc:
        return _refused_or_raise(exc)


def _refused_or_raise(exc: NerClientError) -> NerClientError:
    if exc.code not in REFUSED:
        raise exc
    return exc


def _progress(args: argparse.Namespace, total: int | None) -> Any:
    """A tqdm bar on stderr when asked for (default: stderr is a terminal), else None."""
    wanted = args.progress if args.progress is not None else sys.stderr.isatty()
    if not wanted:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the client extra pins it; without it there is simply no bar
        log.info("tqdm is not installed: no progress bar")
        return None
    return tqdm(total=total, unit="text", desc="ja-ner", file=sys.stderr, dynamic_ncols=True)


def run_many(client: NerClient, lines: Iterable[str], args: argparse.Namespace, out: TextIO, total: int | None) -> int:
    """Answer every text of ``lines`` (--lines/--jsonl); one JSON line out per text. Returns the failures."""
    options = _options(args)
    failures = 0
    bar = _progress(args, total)
    try:
        for batch in _batches(read_records(lines, jsonl=args.jsonl), args.batch_size):
            readable = [r for r in batch if r.text is not None]
            answers = iter(_answer_batch(client, [r.text for r in readable], options) if readable else [])
            for record in batch:
                body = dict(record.fields)
                answer = next(answers) if record.text is not None else None
                if isinstance(answer, Prediction):
                    body["entities"] = _entities_json(answer.entities, args.format)
                else:
                    failures += 1
                    error = (
                        _error_json(answer.code, answer.type, answer.message)
                        if isinstance(answer, NerClientError)
                        else _error_json(400, "InvalidInputLine", record.error or "unreadable line")
                    )
                    body["error"] = error
                out.write(json.dumps(body, ensure_ascii=False) + "\n")
            out.flush()
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    if failures:
        log.error('%d text(s) could not be analysed: see their "error" in the output', failures)
    return failures


def _count_lines(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None


def _main_many(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    if args.text is not None:
        log.error("--lines/--jsonl read texts from --file or stdin, not from an argument")
        return 2
    if not 1 <= args.batch_size <= 64:
        log.error("--batch-size must be 1 to 64 (the service's max_texts)")
        return 2
    from_file = args.file and args.file != "-"
    try:
        source = open(args.file, encoding="utf-8") if from_file else stdin  # noqa: SIM115 - closed below
    except OSError as exc:
        log.error("cannot read %s: %s", args.file, exc.strerror)
        return 2
    try:
        with make_client(args) as client:
            failures = run_many(client, source, args, out, _count_lines(args.file) if from_file else None)
    finally:
        if from_file:
            source.close()
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Entry point of ``ja-ner``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = args.verbose or args.timing
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="ja-ner: %(message)s")
    if args.stream and not args.grpc:
        log.info("--stream over REST: the answer arrives as one message")
    stdin = stdin or sys.stdin
    try:
        out = open(args.output, "w", encoding="utf-8") if args.output else (stdout or sys.stdout)  # noqa: SIM115
    except OSError as exc:
        log.error("cannot write %s: %s", args.output, exc.strerror)
        return 2
    try:
        if args.lines or args.jsonl:
            return _main_many(args, stdin, out)
        return _main_one(args, stdin, out)
    except ServerUnreachable as exc:
        log.error("%s (or pass --%s)", exc.message, "target" if args.grpc else "url")
        return 1
    except NerClientError as exc:
        log.error("%s (%s): %s", exc.type, exc.code, exc.message)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if args.output:
            out.close()


def _main_one(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    try:
        text = _read_text(args, stdin)
    except OSError as exc:
        log.error("cannot read %s: %s", args.file, exc.strerror)
        return 2
    if not text.strip():
        log.error("no text given (argument, --file or stdin)")
        return 2
    with make_client(args) as client:
        _run(client, text, args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
