"""``ja-ner``: named entities of a Japanese text from a running ja-ner service.

    ja-ner "鈴木は熊本県に住む"
    ja-ner --file doc.txt --grpc --stream
    cat doc.txt | ja-ner --json

Exit status: 0 answered, 1 the service refused or failed (message on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import TextIO

from ja_ner.client.results import NerClient, NerClientError, Prediction
from ja_ner.options import OPTIONS

log = logging.getLogger("ja_ner.client.cli")

TOKEN_ENV = "JA_NER_TOKEN"


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


def _as_json(prediction: Prediction) -> str:
    body = asdict(prediction)
    body["entities"] = [asdict(e) for e in prediction.entities]
    if not prediction.partial:
        body.pop("partial")
        body.pop("window")
    return json.dumps(body, ensure_ascii=False)


def _run(client: NerClient, text: str, args: argparse.Namespace, out: TextIO) -> None:
    options = {spec.name: getattr(args, spec.name) for spec in OPTIONS if getattr(args, spec.name) is not None}
    started = time.perf_counter()
    if not args.stream:
        prediction = client.predict(text, **options)
        if args.timing:
            log.info("answer after %.1f ms (%d characters)", (time.perf_counter() - started) * 1000, len(text))
        out.write(_as_json(prediction) + "\n" if args.json else format_table([prediction]))
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


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Entry point of ``ja-ner``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = args.verbose or args.timing
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="ja-ner: %(message)s")
    if args.stream and not args.grpc:
        log.info("--stream over REST: the answer arrives as one message")
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    try:
        text = _read_text(args, stdin)
    except OSError as exc:
        log.error("cannot read %s: %s", args.file, exc.strerror)
        return 2
    if not text.strip():
        log.error("no text given (argument, --file or stdin)")
        return 2
    try:
        with make_client(args) as client:
            _run(client, text, args, out)
    except NerClientError as exc:
        log.error("%s (%s): %s", exc.type, exc.code, exc.message)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
