"""Stage 2: tokenise whole normalised documents once, keeping character offsets."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerFast

# SentencePiece's word-start marker. XLM-R emits it as a token of its own before a character
# it has no piece for; the tokenizer then reports offsets that overlap the next token.
_WORD_START = "\u2581"


@dataclass(frozen=True)
class TokenisedText:
    """Tokens of one normalised text, no special tokens.

    ``offsets[i]`` is the [start, end) character span of token ``i`` in the normalised text;
    a bare word-start token gets the empty span (start, start): it owns no character.
    """

    input_ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(texts: list[str], tokenizer: PreTrainedTokenizerFast) -> list[TokenisedText]:
    """Tokenise ``texts`` in one call (the Rust tokenizer parallelises the batch)."""
    if not texts:
        return []
    out = tokenizer(
        texts,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        truncation=False,
        verbose=False,
    )
    bare_marker = tokenizer.convert_tokens_to_ids(_WORD_START)
    return [
        TokenisedText(
            tuple(ids),
            tuple((s, s) if tid == bare_marker else (s, e) for tid, (s, e) in zip(ids, offsets, strict=True)),
        )
        for ids, offsets in zip(out["input_ids"], out["offset_mapping"], strict=True)
    ]
