"""ja_ner.settings: every construction path is checked; config values are converted once."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from handler.archive import DEFAULT_CONFIG
from ja_ner.errors import ConfigError, NerError
from ja_ner.settings import Settings

BAD = [
    {"max_tokens": 0},
    {"overlap_tokens": 200},  # not less than half of max_tokens
    {"overlap_tokens": -1},
    {"token_budget": 0},
    {"threads": -2},
    {"dtype": "int4"},
    {"device": "gpu"},
    {"min_score": 1.5},
    {"min_score": -1.0},  # "not set" is None, not a negative number
    {"word_edges": "yes"},  # the constructor takes values, not config strings
    {"max_chars": 1.5},
    {"max_batch_chars": 50_000},  # below max_request_chars: one request must always fit
]


@pytest.mark.parametrize("values", BAD)
def test_constructor_and_replace_check_values(values: dict) -> None:
    with pytest.raises(ConfigError):
        Settings(**values)
    with pytest.raises(ConfigError):
        replace(Settings(), **values)


def test_config_error_is_not_a_request_error() -> None:
    assert not issubclass(ConfigError, NerError)


def test_from_mapping_converts_config_strings() -> None:
    settings = Settings.from_mapping({"max_chars": "10", "word_edges": "false", "min_score": "0.5", "threads": 2})
    assert (settings.max_chars, settings.word_edges, settings.min_score, settings.threads) == (10, False, 0.5, 2)
    assert Settings.from_mapping({"min_score": None}).min_score is None
    assert Settings.from_mapping({"min_score": ""}).min_score is None  # a Triton parameter left empty


@pytest.mark.parametrize(
    ("raw", "named"),
    [({"max_char": 1}, "max_char"), ({"device": "cuda:0"}, "device"), ({"max_chars": "many"}, "max_chars"),
     ({"min_score": "2"}, "min_score"), ({"word_edges": "maybe"}, "word_edges")],
)  # fmt: skip
def test_from_mapping_refuses_with_the_key_named(raw: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_mapping(raw)


def test_the_committed_handler_section_is_valid() -> None:
    handler = yaml.safe_load(DEFAULT_CONFIG.read_text())["handler"]
    settings = Settings.from_mapping(handler)
    assert settings.min_score is None  # the model's calibrated threshold applies


def test_from_mapping_refuses_typos_and_bad_values():
    assert Settings.from_mapping({"max_tokens": "128"}).max_tokens == 128
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_mapping({"max_token": 128})
    with pytest.raises(ConfigError, match="must be int"):
        Settings.from_mapping({"max_tokens": "many"})
    with pytest.raises(ConfigError, match="overlap_tokens"):
        Settings.from_mapping({"max_tokens": 32, "overlap_tokens": 16})


def test_decoding_is_one_of_the_codecs_decodings():
    assert Settings.from_mapping({"decoding": "viterbi"}).decoding == "viterbi"
    with pytest.raises(ConfigError, match="decoding.*group, viterbi"):
        Settings.from_mapping({"decoding": "crf"})
    with pytest.raises(ConfigError, match="decoding"):
        Settings(decoding="best")
