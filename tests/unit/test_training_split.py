"""``make data``: the curid hash split (issue 3), on a local ner.json (no network); the held-out test split
carved from train.jsonl (issue 12), on a small fixture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.data import is_test, load_jsonl, load_split, training_examples
from training.split_data import bucket, split_of, write_splits


def test_bucket_is_sha1_of_curid_mod_10():
    # sha1("1") = 356a192b..., as an integer mod 10
    assert bucket("1") == int("356a192b7913b04c54574d18c28d46e6395428ab", 16) % 10
    assert bucket(1) == bucket("1")
    assert split_of("1") in {"train", "dev", "test"}


def test_write_splits_keeps_articles_together(tmp_path):
    records = [{"curid": str(c), "text": f"文{c}-{k}", "entities": []} for c in range(200) for k in range(2)]
    counts = write_splits(records, tmp_path)
    assert sum(counts.values()) == len(records)
    seen: dict[str, str] = {}
    for name in ("train", "dev", "test"):
        for line in (tmp_path / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            assert seen.setdefault(rec["curid"], name) == name == split_of(rec["curid"])
    assert 0 < counts["dev"] < counts["train"] and 0 < counts["test"] < counts["train"]


# --- the held-out test split carved from train.jsonl (issue 12) ---------------------------------------

MINI = Path(__file__).resolve().parents[1] / "data" / "stockmark-mini"  # a fixture, not the real data


def test_test_split_is_disjoint_from_train_and_keeps_articles_together():
    train, test = load_split("train", MINI), load_split("test", MINI)
    everything = load_jsonl(MINI / "train.jsonl")
    assert {ex.curid for ex in test} == {"121", "125"}  # the fixture's two test-bucket articles
    assert not {ex.curid for ex in train} & {ex.curid for ex in test}
    assert sorted(train + test, key=lambda ex: (ex.curid, ex.text)) == sorted(
        everything, key=lambda ex: (ex.curid, ex.text)
    )
    assert all(is_test(ex.curid) for ex in test) and not any(is_test(ex.curid) for ex in train)
    assert len(load_split("dev", MINI)) == 4


def test_training_examples_drop_the_test_split_from_any_file():
    assert training_examples(MINI / "train.jsonl") == load_split("train", MINI)
    assert len(training_examples(MINI / "train.jsonl")) == 20


def test_test_split_includes_a_make_data_test_file(tmp_path):
    for name in ("train.jsonl", "dev.jsonl"):
        shutil.copy(MINI / name, tmp_path / name)
    rec = {"curid": "19", "text": "大阪は晴れ。", "entities": [{"name": "大阪", "span": [0, 2], "type": "地名"}]}
    assert split_of("19") == "test"
    (tmp_path / "test.jsonl").write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    assert {ex.curid for ex in load_split("test", tmp_path)} == {"121", "125", "19"}
    with pytest.raises(ValueError, match="unknown split"):
        load_split("validation", tmp_path)
    with pytest.raises(FileNotFoundError, match="JA_NER_DATA"):
        load_split("test", tmp_path / "nowhere")


def test_test_split_is_about_a_tenth():
    curids = [str(c) for c in range(1_000_000, 1_005_000)]
    share = sum(is_test(c) for c in curids) / len(curids)
    assert 0.09 < share < 0.11, share


def test_split_does_not_depend_on_the_process_hash_seed():
    curids = [str(c) for c in range(100, 160)]
    code = f"from training.data import is_test; print([c for c in {curids!r} if is_test(c)])"
    seen = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        seen.add(out.stdout.strip())
    assert seen == {str([c for c in curids if is_test(c)])}
