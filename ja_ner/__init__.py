"""ja_ner: Japanese named-entity recognition core, free of any serving framework."""

__version__ = "0.1.0"
