"""The whole flow, top to bottom: normalise → encode → segment → batch → forward → aggregate.

Windows are cut in token space after one tokenizer pass over each whole document, so no token
is ever re-tokenised at a window edge (see ``segment``).

Failure policy (every adapter inherits it): a bad document is its own error outcome; if the batch
as a whole fails anyway (a forward micro-batch raising, say out of memory), its documents are
retried one by one and only those that fail again get ``Internal`` (500). ``predict`` never raises
for a document's sake. ``predict_stream`` (one document) lets a failure raise: its caller, the data
plane (``ja_ner.dataplane``), answers that one request 500 under the guard every request passes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from ja_ner import aggregate, batch, encode, forward, normalise, segment
from ja_ner import plan as planning
from ja_ner.errors import ConfigError, InputTooLarge, Internal, InvalidInput, NerError
from ja_ner.labels import Decoding, LabelCodec
from ja_ner.options import Aggregation
from ja_ner.settings import Settings
from ja_ner.types import Document, DocumentResult, Entity, NormalisedText, Outcome, TokenInfo
from ja_ner.words import Words, WordSplitter

log = logging.getLogger(__name__)


@dataclass
class StageTimes:
    """Seconds spent per stage in one ``predict`` call (summed over micro-batches)."""

    seconds: dict[str, float] = field(default_factory=dict)
    batches: list[int] = field(default_factory=list)  # rows of each forward micro-batch

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now

    def merge(self, other: StageTimes) -> None:
        """Add another call's seconds and micro-batches to these."""
        for stage, seconds in other.seconds.items():
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.batches.extend(other.batches)


@dataclass(frozen=True)
class _Prepared:
    doc: Document
    norm: NormalisedText
    words: Words | None  # morphological words, for word-level aggregation and word edges


class Pipeline:
    """A loaded model plus everything needed to answer documents."""

    def __init__(self, model_dir: str | Path, settings: Settings, plan: planning.Plan | None = None) -> None:
        self.settings = settings
        self.model_dir = Path(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)  # never the hub
        if not self.tokenizer.is_fast:
            raise ConfigError(f"{self.model_dir}: a fast tokenizer (tokenizer.json) is required for character offsets")
        if plan is None:  # in process: this process alone on the machine
            plan = planning.resolve(settings, self.model_dir)
            log.info("plan: %s", plan.describe())
        self.plan = plan
        self.forward = forward.load(self.model_dir, plan)
        config = forward.model_config(self.model_dir)
        self.id2label = {int(k): v for k, v in config.id2label.items()}
        self.codec = LabelCodec.from_id2label(self.id2label)
        self.special = batch.SpecialIds(
            self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id
        )
        self.words = WordSplitter()
        # A model folder may carry its own calibrated threshold (config.json "ner_min_score").
        calibrated = float(getattr(config, "ner_min_score", 0.0) or 0.0)
        self.min_score = calibrated if settings.min_score is None else settings.min_score
        self.decoding = Decoding(settings.decoding)
        model_max = getattr(config, "max_position_embeddings", 512) - 2
        self.window_tokens = min(settings.max_tokens, model_max) - 2
        self.max_length = self.window_tokens + 2  # a window with [cls] and [sep]: micro-batches pad no further

    @classmethod
    def load(
        cls, model_dir: str | Path, settings: Settings | None = None, plan: planning.Plan | None = None
    ) -> Pipeline:
        """Load tokenizer and model from a plain local directory (never the network).

        ``plan``: what an adapter resolved for its workers (``ja_ner.plan.resolve``); default: resolved
        here for one process alone on the machine.
        """
        return cls(model_dir, settings or Settings(), plan)

    def predict(self, docs: Sequence[Document]) -> list[Outcome]:
        """Answer every document, in order; a bad document yields its error, not an exception."""
        return self.predict_timed(docs)[0]

    def predict_timed(self, docs: Sequence[Document]) -> tuple[list[Outcome], StageTimes]:
        """``predict`` plus per-stage timings for metrics (see the failure policy at the top)."""
        try:
            return self._predict_timed(docs)
        except Exception as exc:
            if len(docs) < 2:
                log.exception("prediction failed for one document")
                return [Internal("internal error while predicting; see the server log") for _ in docs], StageTimes()
            # no stack here: each document that fails again logs its own, once
            log.warning("prediction failed for a batch of %d documents (%r); retrying one by one", len(docs), exc)
        outcomes: list[Outcome] = []
        times = StageTimes()
        for doc in docs:
            answered, spent = self.predict_timed([doc])
            outcomes += answered
            times.merge(spent)
        return outcomes, times

    def _predict_timed(self, docs: Sequence[Document]) -> tuple[list[Outcome], StageTimes]:
        times = StageTimes()
        t = time.perf_counter()
        prepared: list[_Prepared | NerError] = [self._prepare(d) for d in docs]
        ready = [p for p in prepared if isinstance(p, _Prepared)]
        t = times.add("normalise", t)
        tokens = encode.encode([p.norm.text for p in ready], self.tokenizer)
        t = times.add("encode", t)
        windows = [w for i, p in enumerate(ready) for w in self._segment(i, tokens[i], p)]
        t = times.add("segment", t)
        probs = self._run(windows, tokens, times)
        t = time.perf_counter()
        results = iter([self._entities(p, tokens[i], probs[i]) for i, p in enumerate(ready)])
        times.add("aggregate", t)
        return [p if isinstance(p, NerError) else next(results) for p in prepared], times

    def predict_stream(self, doc: Document) -> Iterator[tuple[bool, Outcome]]:
        """Yield ``(False, partial)`` per window as it is computed, then ``(True, final)``.

        A partial result holds the entities of the tokens that window owns; the final result is
        the same as ``predict([doc])[0]`` (entities that cross a window edge are whole only there).
        A failure raises (one document, one caller: ``ja_ner.dataplane`` answers that request 500).
        """
        prepared = self._prepare(doc)
        if isinstance(prepared, NerError):
            yield True, prepared
            return
        tokens = encode.encode([prepared.norm.text], self.tokenizer)
        doc_probs = np.zeros((len(tokens[0]), len(self.codec.tags)), dtype=np.float32)
        windows = self._segment(0, tokens[0], prepared)
        # The first window runs alone so the first message comes early; the rest run in
        # micro-batches of consecutive windows to keep the throughput of a plain request.
        rest = batch.plan(
            windows[1:],
            token_budget=self.settings.token_budget,
            keep_order=True,
            max_length=self.max_length,
            pad_multiple=self.plan.pad_multiple,
        )
        for group in [windows[:1], *rest] if windows else []:
            self._run_into(group, tokens, [doc_probs])
            for window in group:
                part = slice(window.own_start, window.own_end)
                yield False, self._entities(prepared, tokens[0], doc_probs, part)
        yield True, self._entities(prepared, tokens[0], doc_probs)

    # -- stages -----------------------------------------------------------------------------

    def _prepare(self, doc: Document) -> _Prepared | NerError:
        if not isinstance(doc.text, str):
            return InvalidInput(f"text must be a string, got {type(doc.text).__name__}")
        if len(doc.text) > self.settings.max_chars:
            return InputTooLarge(f"text has {len(doc.text)} characters; the limit is {self.settings.max_chars}")
        if any("\ud800" <= ch <= "\udfff" for ch in doc.text):
            return InvalidInput("text contains a lone UTF-16 surrogate; send valid Unicode")
        norm = normalise.normalise(doc.text)
        # Split words once per document: a stream aggregates the same text once per window.
        need_words = self.settings.word_edges or doc.options.aggregation is not Aggregation.SIMPLE
        words = self.words(norm.text) if need_words else None
        return _Prepared(doc, norm, words)

    def _segment(self, index: int, tokens: encode.TokenisedText, p: _Prepared) -> list[segment.Window]:
        return segment.segment(
            index, tokens, p.norm.text, max_tokens=self.window_tokens, overlap=self.settings.overlap_tokens
        )

    def _run(
        self, windows: list[segment.Window], tokens: list[encode.TokenisedText], times: StageTimes
    ) -> list[np.ndarray]:
        """Forward every window in token-budget micro-batches; per-document [tokens, labels] probs."""
        out = [np.zeros((len(tok), len(self.codec.tags)), dtype=np.float32) for tok in tokens]
        groups = batch.plan(
            windows,
            token_budget=self.settings.token_budget,
            max_length=self.max_length,
            pad_multiple=self.plan.pad_multiple,
        )
        for group in groups:
            t = time.perf_counter()
            self._run_into(group, tokens, out)
            times.add("forward", t)
            times.batches.append(len(group))
        return out

    def _run_into(self, group: list[segment.Window], tokens: list[encode.TokenisedText], out: list[np.ndarray]) -> None:
        assembled = batch.assemble(group, tokens, self.special, self.max_length, self.plan.pad_multiple)
        probs = self.forward(assembled)
        for row, w in enumerate(group):
            # row position 0 is [cls]; window token j sits at position j - w.start + 1
            first = w.own_start - w.start + 1
            out[w.doc_index][w.own_start : w.own_end] = probs[row, first : first + w.own_end - w.own_start]

    def _entities(
        self, p: _Prepared, tokens: encode.TokenisedText, probs: np.ndarray, part: slice = slice(None)
    ) -> DocumentResult:
        indices = [i for i in range(len(tokens))[part] if tokens.offsets[i][0] < tokens.offsets[i][1]]
        offsets = [tokens.offsets[i] for i in indices]
        spans = aggregate.aggregate(
            p.norm.text,
            offsets,
            probs[indices],
            self.codec,
            p.doc.options.aggregation,
            p.words,
            word_edges=self.settings.word_edges,
            keep_function_words=self.settings.function_word_types,
            news_edges=self.settings.news_edges,
            min_score=self.min_score if p.doc.options.min_score is None else p.doc.options.min_score,
            decoding=self.decoding,
        )
        entities = []
        last_end = 0
        for span in spans:
            start, end = normalise.to_original_span(p.norm, span.start, span.end)
            start = max(start, last_end)  # one original character may feed two spans
            if start < end:
                entities.append(Entity(span.type, p.doc.text[start:end], start, end, round(span.score, 4)))
                last_end = end
        token_info = self._token_info(p, tokens, probs, indices) if p.doc.options.include_tokens else None
        return DocumentResult(tuple(entities), truncated=False, tokens=token_info)

    def _token_info(
        self, p: _Prepared, tokens: encode.TokenisedText, probs: np.ndarray, indices: list[int]
    ) -> tuple[TokenInfo, ...]:
        pieces = self.tokenizer.convert_ids_to_tokens([tokens.input_ids[i] for i in indices])
        info = []
        for piece, i in zip(pieces, indices, strict=True):
            label = int(probs[i].argmax())
            start, end = normalise.to_original_span(p.norm, *tokens.offsets[i])
            info.append(TokenInfo(piece, start, end, self.id2label[label], round(float(probs[i, label]), 4)))
        return tuple(info)
