"""Batch invariance (issue 21): a text's answer is the same alone, in any batch and streamed, in every format.

Runs in process on whatever machine runs the suite, for float32, int8 and bfloat16 (emulated where
the CPU has no native bf16), so a developer on one kind of CPU still exercises what another serves.
"""

import random
from pathlib import Path

import numpy as np
import pytest

from ja_ner.batch import from_rows
from ja_ner.pipeline import Pipeline
from ja_ner.request import render_result
from ja_ner.settings import Settings
from ja_ner.types import Document
from training.challenge import load as load_challenge

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "ja-ner-small"
LONG = "東京都の小池百合子知事は記者会見で、新宿区に新しい病院を建てる計画を発表した。" * 12


@pytest.fixture(scope="module")
def texts() -> list[str]:
    chosen = [item.example.text for item in load_challenge()][::6]  # 37 texts of every class and length
    return [*chosen, LONG, "東京", "　"]


@pytest.fixture(scope="module", autouse=True)
def _probe_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JA_NER_CACHE", str(tmp_path_factory.mktemp("probe")))
        yield


def _answers(pipeline: Pipeline, docs: list[Document], outcomes) -> list[dict]:
    return [render_result(d, o) for d, o in zip(docs, outcomes, strict=True)]


@pytest.mark.parametrize("dtype", ["float32", "int8", "bfloat16"])
def test_answers_do_not_depend_on_batch_neighbours(texts, dtype):
    if not (DEFAULT_MODEL / "model.safetensors").is_file():
        pytest.skip("the default model (models/ja-ner-small) is not in this checkout")
    pipeline = Pipeline.load(DEFAULT_MODEL, Settings(dtype=dtype, threads=1, batch_invariant=True))
    docs = [Document(t) for t in texts]
    alone = _answers(pipeline, docs, [pipeline.predict([d])[0] for d in docs])
    assert sum(len(a["entities"]) for a in alone) >= 40  # there are entities to disagree on
    for seed in (0, 1):
        order = list(range(len(docs)))
        random.Random(seed).shuffle(order)
        batched = pipeline.predict([docs[i] for i in order])
        assert _answers(pipeline, [docs[i] for i in order], batched) == [alone[i] for i in order], pipeline.plan
    long_doc = docs[texts.index(LONG)]
    final = [o for is_final, o in pipeline.predict_stream(long_doc) if is_final][0]
    assert render_result(long_doc, final) == alone[texts.index(LONG)]


def test_a_row_by_row_forward_is_exactly_each_row_alone():
    if not (DEFAULT_MODEL / "model.safetensors").is_file():
        pytest.skip("the default model (models/ja-ner-small) is not in this checkout")
    from ja_ner import forward
    from ja_ner.plan import PROBE_TEXTS, Plan

    tokenizer = Pipeline.load(DEFAULT_MODEL, Settings(dtype="float32", threads=1)).tokenizer
    rows = tokenizer(list(PROBE_TEXTS[:6]))["input_ids"]
    model = forward.load(DEFAULT_MODEL, Plan("cpu", "torch", "int8", 1, rowwise=True))
    together = model(from_rows(rows, tokenizer.pad_token_id))
    for r, row in enumerate(rows):
        alone = model(from_rows([row], tokenizer.pad_token_id))[0]
        assert np.array_equal(together[r, : len(row)], alone)  # bit for bit
        assert not together[r, len(row) :].any()  # padding positions stay empty
