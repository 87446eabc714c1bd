"""Entity-level precision/recall/F1 on character spans (exact start, end and type) and error analysis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from training.data import Span


@dataclass(frozen=True)
class PRF:
    """Counts and scores for one type (or all types: micro average)."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "support": self.tp + self.fn,
        }


@dataclass(frozen=True)
class Scores:
    """Micro-averaged and per-type scores."""

    micro: PRF
    per_type: dict[str, PRF]

    def as_dict(self) -> dict:
        return {"micro": self.micro.as_dict(), "per_type": {t: s.as_dict() for t, s in self.per_type.items()}}


def score(gold: Sequence[Iterable[Span]], pred: Sequence[Iterable[Span]], types: Iterable[str] = ()) -> Scores:
    """Exact-match entity scores over sentences; ``gold[i]`` and ``pred[i]`` belong to sentence i.

    A predicted entity is a true positive when a gold entity of the same sentence has the same start,
    end and type. Duplicated predictions count once. ``types`` lists types to report even when absent.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g_spans, p_spans in zip(gold, pred, strict=True):
        g = {(s.start, s.end, s.type) for s in g_spans}
        p = {(s.start, s.end, s.type) for s in p_spans}
        for _, _, t in g & p:
            tp[t] += 1
        for _, _, t in p - g:
            fp[t] += 1
        for _, _, t in g - p:
            fn[t] += 1
    listed = list(types)
    all_types = listed + sorted((set(tp) | set(fp) | set(fn)) - set(listed))
    per_type = {t: PRF(tp[t], fp[t], fn[t]) for t in all_types}
    micro = PRF(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return Scores(micro, per_type)


def classify_errors(gold: Sequence[Iterable[Span]], pred: Sequence[Iterable[Span]]) -> Counter[str]:
    """Count error kinds: each unmatched gold or predicted entity is put in exactly one bucket.

    Buckets (checked in this order for a gold entity g without an exact match):
    ``type:<gold>-><pred>`` a prediction with g's exact span but another type;
    ``boundary:<type>`` an overlapping prediction of the same type with other bounds;
    ``boundary+type:<gold>-><pred>`` an overlapping prediction of another type and other bounds;
    ``miss:<type>`` nothing overlaps g.
    A prediction overlapping no gold entity is ``spurious:<type>``.
    """
    out: Counter[str] = Counter()
    for g_spans, p_spans in zip(gold, pred, strict=True):
        g_set = {(s.start, s.end, s.type) for s in g_spans}
        p_set = {(s.start, s.end, s.type) for s in p_spans}
        g_only = g_set - p_set
        p_only = p_set - g_set
        for gs, ge, gt in sorted(g_only):
            same_span = [p for p in p_only if p[0] == gs and p[1] == ge]
            overlap = [p for p in p_only if p[0] < ge and gs < p[1]]
            if same_span:
                out[f"type:{gt}->{same_span[0][2]}"] += 1
            elif any(p[2] == gt for p in overlap):
                out[f"boundary:{gt}"] += 1
            elif overlap:
                out[f"boundary+type:{gt}->{overlap[0][2]}"] += 1
            else:
                out[f"miss:{gt}"] += 1
        for ps, pe, pt in sorted(p_only):
            if not any(g[0] < pe and ps < g[1] for g in g_set):
                out[f"spurious:{pt}"] += 1
    return out
