"""Build-time tooling for the default model: convert, trim, train, evaluate (training extra only)."""

import importlib.util
import sys

# The repository's top-level `triton/` folder (the Triton adapter) is importable as a namespace package
# named `triton` whenever the repo root is on sys.path; torch._dynamo then takes it for OpenAI Triton and
# fails on `triton.language`. Hide it before torch is imported (real Triton has an origin file).
_spec = importlib.util.find_spec("triton")
if _spec is not None and _spec.origin is None and "triton" not in sys.modules:
    sys.modules["triton"] = None  # type: ignore[assignment]
