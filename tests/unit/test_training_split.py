"""``make data``: the curid hash split (issue 3), on a local ner.json (no network)."""

from __future__ import annotations

import json

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
