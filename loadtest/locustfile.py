"""Locust users for the ja_ner TorchServe bundle: ``RestUser`` and ``GrpcUser``.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080 RestUser GrpcUser

Both users send the same payloads (text/plain, ``{"text"}``, ``{"texts"}`` client batches drawn
from the corpus) and check every answer; a wrong answer is a failure. Options (each also an
environment variable) are listed by ``locust -f loadtest/locustfile.py --help`` under the
``--ja-*`` names and in docs/loadtest.md. ``make loadtest`` (loadtest/run.py) drives this file.
"""

from __future__ import annotations

import random
import sys
import time
from itertools import count
from pathlib import Path
from urllib.parse import urlparse

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # locust puts only this file's folder on sys.path
    sys.path.insert(0, str(_ROOT))

from loadtest.grpc_client import GrpcClient, init_gevent_grpc  # noqa: E402

init_gevent_grpc()  # before any gRPC channel exists; Locust has already patched the standard library

import gevent  # noqa: E402
from locust import FastHttpUser, User, constant, events, task  # noqa: E402

from loadtest.check import (  # noqa: E402
    ENTITY_TYPES,
    KindCycle,
    Payload,
    WrongAnswer,
    check_answer,
    corrupt,
    make_payload,
    parse_weights,
)
from loadtest.corpus import Corpus, load_corpus  # noqa: E402
from loadtest.samples import SampleWriter  # noqa: E402


class _Config:
    """Options resolved once at ``init`` and shared by every user of this process."""

    model = "ja_ner"
    token = ""
    grpc_target = ""
    corpus: Corpus
    weights: dict[str, float] = {}
    batch_size = 4
    timeout_s = 60.0
    seed = 0
    corrupt_check = False
    types: frozenset[str] | None = ENTITY_TYPES
    samples: SampleWriter | None = None


CONFIG = _Config()
_user_numbers, _rest_numbers, _grpc_numbers = count(), count(), count()


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    add = parser.add_argument
    add("--ja-model", env_var="LOADTEST_MODEL", default="ja_ner", help="model name in /predictions/<model>")
    add("--ja-token", env_var="LOADTEST_TOKEN", default="", help="inference key (TorchServe token auth)")
    add(
        "--ja-grpc-target",
        env_var="LOADTEST_GRPC_TARGET",
        default="",
        help="gRPC inference host:port (default: the --host name, port 7070)",
    )
    add(
        "--ja-mix",
        env_var="LOADTEST_MIX",
        default="mixed",
        choices=["short", "mixed", "long"],
        help="length mix of the bundled corpus",
    )
    add(
        "--ja-corpus",
        env_var="LOADTEST_CORPUS",
        default="",
        help="your own texts: one per line, or JSON lines with a 'text' field (overrides --ja-mix)",
    )
    add(
        "--ja-weights",
        env_var="LOADTEST_WEIGHTS",
        default="text=5,json=4,batch=1",
        help="share of payload kinds: text/plain body, {'text'} JSON, {'texts'} client batch",
    )
    add("--ja-batch-size", env_var="LOADTEST_BATCH_SIZE", type=int, default=4, help="texts per client batch")
    add("--ja-timeout", env_var="LOADTEST_TIMEOUT", type=float, default=60.0, help="seconds per request")
    add("--ja-seed", env_var="LOADTEST_SEED", type=int, default=0, help="seed of the payload choice")
    add(
        "--ja-any-type",
        env_var="LOADTEST_ANY_TYPE",
        action="store_true",
        help="accept entity types outside the 8 of the default model",
    )
    add("--ja-samples", env_var="LOADTEST_SAMPLES", default="", help="write one CSV line per request here")
    add(
        "--ja-corrupt-check",
        env_var="LOADTEST_CORRUPT_CHECK",
        action="store_true",
        include_in_web_ui=False,
        help="TEST ONLY: check answers against rotated texts, so every entity is a wrong answer",
    )


@events.init.add_listener
def _configure(environment, **_kwargs) -> None:
    # The hub's loop was made at import (init_gevent_grpc) and its cached clock is as old as the
    # imports since; refresh it or Locust's --run-time timer fires early by that much.
    gevent.get_hub().loop.update_now()
    opts = environment.parsed_options
    if opts is None:  # used as a library without a command line
        return
    CONFIG.model = opts.ja_model
    CONFIG.token = opts.ja_token
    CONFIG.grpc_target = opts.ja_grpc_target or f"{urlparse(environment.host or 'http://127.0.0.1').hostname}:7070"
    CONFIG.corpus = load_corpus(opts.ja_mix, Path(opts.ja_corpus) if opts.ja_corpus else None)
    CONFIG.weights = parse_weights(opts.ja_weights)
    CONFIG.batch_size = opts.ja_batch_size
    CONFIG.timeout_s = opts.ja_timeout
    CONFIG.seed = opts.ja_seed
    CONFIG.corrupt_check = opts.ja_corrupt_check
    CONFIG.types = None if opts.ja_any_type else ENTITY_TYPES
    RestUser.network_timeout = RestUser.connection_timeout = opts.ja_timeout
    if opts.ja_samples:
        CONFIG.samples = SampleWriter(Path(opts.ja_samples))
        environment.events.request.add_listener(CONFIG.samples.on_request)


@events.test_start.add_listener
def _mark_start(environment, **_kwargs) -> None:
    if CONFIG.samples is not None:
        CONFIG.samples.started = time.time()


@events.test_stop.add_listener
def _close_samples(environment, **_kwargs) -> None:
    if CONFIG.samples is not None:
        CONFIG.samples.close(
            {
                "model": CONFIG.model,
                "host": environment.host,
                "grpc_target": CONFIG.grpc_target,
                "corpus": CONFIG.corpus.source,
                "corpus_texts": CONFIG.corpus.size,
                "payload_weights": CONFIG.weights,
                "batch_size": CONFIG.batch_size,
                "corrupt_check": CONFIG.corrupt_check,
            }
        )
        CONFIG.samples = None


class _Workload:
    """One user's payload stream: kinds in weighted rotation, texts drawn from the corpus."""

    def __init__(self, number_in_class: int) -> None:
        self.rng = random.Random(CONFIG.seed * 1_000_003 + next(_user_numbers))
        # Users of one class start at successive places of the cycle: with as many users as kinds,
        # the first request of each already covers every kind.
        self.kinds = KindCycle(CONFIG.weights, offset=number_in_class)

    def next(self) -> tuple[Payload, Payload]:
        """A payload to send and the one to check the answer against (they differ only with
        --ja-corrupt-check)."""
        payload = make_payload(self.kinds.next(), CONFIG.corpus, self.rng, CONFIG.batch_size)
        return payload, corrupt(payload) if CONFIG.corrupt_check else payload


class RestUser(FastHttpUser):
    """POSTs to ``/predictions/<model>`` (geventhttpclient: light on the load generator's CPU)."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.workload = _Workload(next(_rest_numbers))
        self.headers_base = {"Authorization": f"Bearer {CONFIG.token}"} if CONFIG.token else {}

    @task
    def predict(self) -> None:
        sent, expected = self.workload.next()
        path = f"/predictions/{CONFIG.model}"
        headers = {**self.headers_base, "Content-Type": sent.content_type}
        with self.client.post(
            path, data=sent.body, headers=headers, name=f"{path} [{sent.kind}]", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            try:
                check_answer(response.content or b"", expected, CONFIG.types)
            except WrongAnswer as exc:
                response.failure(exc)
            else:
                response.success()


class GrpcUser(User):
    """Calls the TorchServe gRPC ``Predictions`` rpc; one channel per user."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.workload = _Workload(next(_grpc_numbers))
        self.grpc = GrpcClient(
            CONFIG.grpc_target, self.environment.events.request, token=CONFIG.token, timeout_s=CONFIG.timeout_s
        )

    def on_stop(self) -> None:
        self.grpc.close()

    @task
    def predict(self) -> None:
        sent, expected = self.workload.next()
        self.grpc.predictions(
            CONFIG.model, sent, f"Predictions [{sent.kind}]", lambda body: check_answer(body, expected, CONFIG.types)
        )
