"""Stage 6b: move entity edges onto word boundaries.

XLM-R's pieces ignore Japanese word boundaries: one piece often holds a name's last character
and the particle after it (県の), or cuts a katakana name in two. Measured on the Stockmark dev
split (docs/model.md), entity spans improve when their edges follow the analyser's words:

- an edge that falls inside a content word moves out to that word's edge (JFE商|事 -> JFE商事);
- particles and auxiliaries at either end are dropped (日本の -> 日本), keeping at least one word
  (a span of nothing but particles is left as it is).

Titles (PRD in the default model) legitimately end in particles (勝手にしやがれ), so the
caller decides per entity type whether to drop them.
"""

from __future__ import annotations

from ja_ner.words import Words


def follow_words(start: int, end: int, words: Words, *, drop_function: bool) -> tuple[int, int]:
    """The span [start, end) with its edges on word boundaries.

    Args:
        words: the text's words.
        drop_function: whether particles/auxiliaries at the span's ends are removed.
    """
    first = words.at(start)
    if first is not None and first.start < start and not first.function:
        start = first.start
    last = words.at(end - 1)
    if last is not None and last.end > end and not last.function:
        end = last.end
    if drop_function:
        start, end = _drop_function_words(start, end, words)
    return start, end


def _drop_function_words(start: int, end: int, words: Words) -> tuple[int, int]:
    inside = words.within(start, end)
    if all(w.function for w in inside):
        return start, end  # nothing but particles: not ours to judge
    while len(inside) > 1 and inside[-1].function and inside[-1].end == end:
        end = inside.pop().start
    while len(inside) > 1 and inside[0].function and inside[0].start == start:
        start = inside.pop(0).end
    return start, end
