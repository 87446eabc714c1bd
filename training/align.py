"""Character spans <-> token labels (IOB2) for training and for in-process decoding.

Policy (also in the model card):

- Label set: ``O`` then ``B-T``, ``I-T`` for T in PER, ORG, ORG-P, ORG-O, LOC, INS, PRD, EVT.
- A token's characters are its offset range minus whitespace. It takes the type of the entity that
  covers the most of those characters (ties: the entity that starts first); ``O`` if none covers any.
  It is ``B-`` if it contains that entity's first character, else ``I-``.
- Special tokens, and tokens with no character of their own (XLM-R's lone ``▁``, whose offsets overlap
  the next token), get ``IGNORE`` (-100): the loss skips them and decoding passes over them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ja_ner.labels import BIO_LABELS, LabelCodec
from training.data import Span

IGNORE = -100
LABELS: tuple[str, ...] = BIO_LABELS
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
META = "\u2581"


def _own_chars(text: str, start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if not text[i].isspace()]


def token_labels(
    text: str,
    tokens: Sequence[str],
    offsets: Sequence[tuple[int, int]],
    special: Sequence[int],
    spans: Sequence[Span],
) -> list[int]:
    """Label ids for one encoded sentence.

    Args:
        text: the original sentence; offsets index its code points.
        tokens: token strings (``▁`` marks a word start), one per token.
        offsets: ``(start, end)`` code-point range of each token in ``text``.
        special: 1 for special tokens (``<s>``, ``</s>``, padding), else 0.
        spans: the gold entities (non-overlapping).

    Returns:
        One label id per token, ``IGNORE`` for special tokens and lone ``▁`` tokens.
    """
    labels: list[int] = []
    for tok, (start, end), is_special in zip(tokens, offsets, special, strict=True):
        if is_special or tok == META:
            labels.append(IGNORE)
            continue
        chars = _own_chars(text, start, end)
        if not chars:
            labels.append(IGNORE)
            continue
        best: Span | None = None
        best_overlap = 0
        for span in spans:
            overlap = sum(1 for i in chars if span.start <= i < span.end)
            if overlap > best_overlap:
                best, best_overlap = span, overlap
        if best is None:
            labels.append(LABEL2ID["O"])
        else:
            prefix = "B" if best.start in chars else "I"
            labels.append(LABEL2ID[f"{prefix}-{best.type}"])
    return labels


def decode_spans(
    text: str,
    offsets: Sequence[tuple[int, int]],
    label_ids: Sequence[int],
    id2label: dict[int, str],
) -> list[Span]:
    """Entities from per-token predicted labels, read by the core codec (``LabelCodec.runs``: any scheme,
    lenient about a stray ``I-``).

    Tokens with ``IGNORE`` as label id, or with no character of their own, are passed over. A span runs
    from its first token's first non-space character to its last token's last non-space character.
    """
    codec = LabelCodec.from_id2label(id2label)
    chars: list[list[int]] = []  # the characters of each token that takes part
    labels: list[int] = []
    for (start, end), lid in zip(offsets, label_ids, strict=True):
        own = _own_chars(text, start, end) if lid != IGNORE else []
        if own:
            chars.append(own)
            labels.append(int(lid))
    return [Span(chars[first][0], chars[stop - 1][-1] + 1, kind) for first, stop, kind in codec.runs(labels)]
