"""Build-time tooling for the default model: convert, trim, train, evaluate (training extra only)."""
