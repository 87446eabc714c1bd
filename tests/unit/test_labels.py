"""The label codec keeps hyphenated types whole and detects the scheme."""

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
