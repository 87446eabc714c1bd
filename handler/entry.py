"""The module TorchServe loads from the archive root (the manifest's ``handler``).

TorchServe instantiates the one class defined in the module it loads and counts only classes
defined there, so this module defines one; the adapter itself is the ``handler`` package, imported
the same way in the archive and in the tests.
"""

from __future__ import annotations

from handler.handler import JaNerHandler


class TorchServeEntry(JaNerHandler):
    """``handler.handler.JaNerHandler`` as the class TorchServe instantiates."""
