"""The label codec keeps hyphenated types whole, detects the scheme and decodes its legal paths."""

import itertools

import numpy as np
import pytest

from ja_ner.errors import ConfigError
from ja_ner.labels import LabelCodec, Scheme

IO = ["O", "PER", "ORG", "ORG-P", "ORG-O", "LOC", "INS", "PRD", "EVT"]


def test_io_labels_keep_hyphenated_types():
    codec = LabelCodec.from_id2label(dict(enumerate(IO)))
    assert codec.scheme is Scheme.IO
    assert codec.types == ("PER", "ORG", "ORG-P", "ORG-O", "LOC", "INS", "PRD", "EVT")
    assert codec.tags[4].type == "ORG-O" and codec.tags[4].position == "I"
    assert codec.tags[0].position == "O"


def test_bio_prefix_is_cut_at_the_first_hyphen_only():
    labels = ["O", "B-ORG-P", "I-ORG-P", "B-PER", "I-PER"]
    codec = LabelCodec.from_id2label({str(i): n for i, n in enumerate(labels)})
    assert codec.scheme is Scheme.BIO
    assert [(t.position, t.type) for t in codec.tags] == [
        ("O", ""),
        ("B", "ORG-P"),
        ("I", "ORG-P"),
        ("B", "PER"),
        ("I", "PER"),
    ]


def test_bioes_detected():
    codec = LabelCodec.from_id2label(dict(enumerate(["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"])))
    assert codec.scheme is Scheme.BIOES


def test_mixed_labels_fall_back_to_io():
    # "INS" starts with I but has no hyphen: a bare type, so the model is IO
    codec = LabelCodec.from_id2label(dict(enumerate(["O", "INS", "I-X"])))
    assert codec.scheme is Scheme.IO and codec.tags[2].type == "I-X"


@pytest.mark.parametrize("bad", [{0: "PER", 1: "LOC"}, {0: "O", 2: "PER"}])
def test_invalid_label_maps(bad):
    with pytest.raises(ConfigError):
        LabelCodec.from_id2label(bad)


# --- the scheme's grammar: Viterbi and runs (issue 24) ------------------------------------------

BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]


def _legal(codec: LabelCodec, path) -> bool:
    start, step, end = codec.allowed
    return bool(start[path[0]] and end[path[-1]] and all(step[a, b] for a, b in itertools.pairwise(path)))


def _log_prob(probs: np.ndarray, path) -> float:
    return float(sum(np.log(probs[t, label]) for t, label in enumerate(path)))


@pytest.mark.parametrize("labels", [BIO, BIOES], ids=["BIO", "BIOES"])
def test_viterbi_is_the_best_legal_path_by_exhaustive_search(labels):
    codec = LabelCodec.from_id2label(dict(enumerate(labels)))
    rng = np.random.default_rng(7)
    for _ in range(40):
        probs = rng.dirichlet(np.full(len(labels), 0.3), size=4)
        legal = [p for p in itertools.product(range(len(labels)), repeat=4) if _legal(codec, p)]
        best = max(legal, key=lambda p: _log_prob(probs, p))
        got = codec.viterbi(probs)
        assert _legal(codec, got)
        assert _log_prob(probs, got) == pytest.approx(_log_prob(probs, best))


def test_bio_grammar_refuses_inside_after_outside_or_another_type():
    codec = LabelCodec.from_id2label(dict(enumerate(BIO)))
    start, step, end = codec.allowed
    o, b_per, i_per, b_loc, i_loc = range(5)
    assert not start[i_per] and start[b_per] and start[o]
    assert not step[o, i_per] and not step[b_loc, i_per] and not step[i_loc, i_per]
    assert step[b_per, i_per] and step[i_per, i_per] and step[i_per, b_loc] and step[i_per, o]
    assert end.all()  # IOB2 may end anywhere


def test_bioes_grammar_closes_every_entity():
    codec = LabelCodec.from_id2label(dict(enumerate(BIOES)))
    start, step, end = codec.allowed
    o, b_loc, i_loc, e_loc, s_loc, b_per = range(6)
    assert not step[b_loc, o] and not step[b_loc, b_per] and step[b_loc, e_loc] and step[i_loc, e_loc]
    assert not step[e_loc, i_loc] and step[e_loc, s_loc] and step[s_loc, b_per]
    assert not end[b_loc] and not end[i_loc] and end[e_loc] and end[o]
    assert not start[e_loc] and start[s_loc]


def test_viterbi_mends_a_stray_inside_instead_of_following_the_argmax():
    codec = LabelCodec.from_id2label(dict(enumerate(BIO)))
    # argmax: O I-PER I-PER, an entity without a B. Legal: B-PER I-PER I-PER (0.4 * 0.6 * 0.9 = 0.216)
    # beats O B-PER I-PER (0.55 * 0.3 * 0.9 = 0.149): the name opens one unit earlier than the argmax's
    probs = np.array([[0.55, 0.4, 0.05, 0.0, 0.0], [0.1, 0.3, 0.6, 0.0, 0.0], [0.1, 0.0, 0.9, 0.0, 0.0]])
    assert probs.argmax(axis=1).tolist() == [0, 2, 2]
    assert codec.viterbi(probs).tolist() == [1, 2, 2]
    assert codec.runs(codec.viterbi(probs)) == [(0, 3, "PER")]


def test_io_viterbi_is_the_argmax():
    codec = LabelCodec.from_id2label(dict(enumerate(IO)))
    probs = np.random.default_rng(3).dirichlet(np.ones(len(IO)), size=30)
    assert codec.viterbi(probs).tolist() == probs.argmax(axis=1).tolist()
    assert codec.viterbi(np.zeros((0, len(IO)))).tolist() == []


def test_runs_read_each_scheme():
    io = LabelCodec.from_id2label(dict(enumerate(IO)))
    assert io.runs([1, 1, 5, 0, 5]) == [(0, 2, "PER"), (2, 3, "LOC"), (4, 5, "LOC")]
    bio = LabelCodec.from_id2label(dict(enumerate(BIO)))
    # B-PER I-PER B-PER | O | I-LOC (stray: opens) I-PER (another type: opens)
    assert bio.runs([1, 2, 1, 0, 4, 2]) == [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC"), (5, 6, "PER")]
    bioes = LabelCodec.from_id2label(dict(enumerate(BIOES)))
    # S-LOC S-LOC B-PER E-PER I-PER(after E: opens)
    assert bioes.runs([4, 4, 5, 7, 6]) == [(0, 1, "LOC"), (1, 2, "LOC"), (2, 4, "PER"), (4, 5, "PER")]
