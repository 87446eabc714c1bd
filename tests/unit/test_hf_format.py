"""``format: hf`` has the shape of a real Hugging Face TokenClassificationPipeline answer."""

from __future__ import annotations

import numbers

import pytest

from ja_ner.request import parse_request, render_response
from ja_ner.types import HF_KEYS, DocumentResult, Entity

TEXT = "鈴木は熊本県の阿蘇山に登った"


@pytest.fixture(scope="module")
def pipeline_answer(tiny_model_dir) -> list[dict]:
    """What transformers' own pipeline (aggregation "simple") returns, on the tiny random model."""
    from transformers import pipeline

    answer = pipeline("token-classification", model=str(tiny_model_dir), aggregation_strategy="simple", device="cpu")(
        TEXT
    )
    assert answer, "the tiny random model tags something"
    return answer


def test_hf_answer_has_the_pipelines_keys_in_its_order_and_types(pipeline_answer) -> None:
    request = parse_request({"text": TEXT, "options": {"format": "hf"}}, max_texts=4)
    status, ours = render_response(request, [DocumentResult((Entity("PER", "鈴木", 0, 2, 0.97),))], {"model": "m"})
    assert status == 200 and isinstance(ours, list)
    theirs = pipeline_answer[0]
    assert list(ours[0]) == list(theirs) == [hf for hf, _ in HF_KEYS]
    kinds = {
        "entity_group": str,
        "word": str,
        "start": numbers.Integral,
        "end": numbers.Integral,
        "score": numbers.Real,
    }
    for key, kind in kinds.items():
        assert isinstance(ours[0][key], kind) and isinstance(theirs[key], kind), key  # theirs: numpy float32 score
