"""The int8 forward (issue 13) agrees with fp32 on a fixed set, and keeps the head and FFN in float."""

from pathlib import Path

import pytest
import torch

from ja_ner.pipeline import Pipeline
from ja_ner.settings import Settings
from ja_ner.types import Document

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "ja-ner-small"
# Written for this test: persons, companies, places, facilities, products, events, particles at edges.
SENTENCES = [
    "鈴木は熊本県の阿蘇山に登った。",
    "トヨタ自動車は愛知県豊田市に本社を置く自動車メーカーである。",
    "田中角栄は新潟県出身の政治家で、自由民主党の総裁を務めた。",
    "東京ドームで開かれた日本シリーズで読売ジャイアンツが優勝した。",
    "ソニーは大阪市のホテルでプレイステーション5の新型を発表した。",
    "山田花子さんは京都大学を卒業後、国際連合に勤めた。",
    "夏目漱石の小説『吾輩は猫である』は1905年に発表された。",
    "北海道札幌市で札幌オリンピックが開催された。",
    "パナソニックと日立製作所は共同で新会社を設立した。",
    "羽田空港から福岡空港へ向かう便が欠航した。",
]


def _spans(pipeline: Pipeline) -> list[list[tuple[str, int, int]]]:
    outcomes = pipeline.predict([Document(s) for s in SENTENCES])
    return [[(e.type, e.start, e.end) for e in outcome.entities] for outcome in outcomes]


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Pipeline]:
    if not (DEFAULT_MODEL / "model.safetensors").is_file():
        pytest.skip("the default model (models/ja-ner-small) is not in this checkout")
    return {d: Pipeline.load(DEFAULT_MODEL, Settings(dtype=d, threads=1)) for d in ("float32", "int8")}


def test_int8_finds_the_same_entities_as_fp32(pipelines):
    fp32, int8 = _spans(pipelines["float32"]), _spans(pipelines["int8"])
    assert sum(map(len, fp32)) >= 20  # the set really has entities to disagree on
    assert int8 == fp32


def test_int8_quantises_attention_only(pipelines):
    model = pipelines["int8"].forward.model
    quantised = {n for n, m in model.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)}
    floats = {n for n, m in model.named_modules() if type(m) is torch.nn.Linear}
    assert quantised and all(".attention." in n for n in quantised)
    assert "classifier" in floats and any(n.endswith("intermediate.dense") for n in floats)
    assert pipelines["int8"].plan.dtype == "int8"
