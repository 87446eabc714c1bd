"""The one error hierarchy of the core; adapters map ``code`` to their transport."""

from __future__ import annotations


class NerError(Exception):
    """Base of every error the core reports about a request or itself.

    ``code`` is the HTTP-like status (adapters own the translation tables);
    ``type`` is the stable name clients may branch on.
    """

    code = 500
    type = "Internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, object]:
        """The JSON error body every transport sends: ``{code, type, message}``."""
        return {"code": self.code, "type": self.type, "message": self.message}


class InvalidInput(NerError):
    """The request cannot be read: bad encoding, bad JSON shape, bad option."""

    code = 400
    type = "InvalidInput"


class InputTooLarge(NerError):
    """The request exceeds a configured size limit (characters, bytes or texts)."""

    code = 413
    type = "InputTooLarge"


class NotReady(NerError):
    """The model is not loaded (yet)."""

    code = 503
    type = "NotReady"


class Busy(NerError):
    """The request was refused to keep one server batch inside its time limit; retrying later succeeds."""

    code = 503
    type = "Busy"


class Internal(NerError):
    """A fault of ours, not of the request."""

    code = 500
    type = "Internal"


ALL_ERRORS: tuple[type[NerError], ...] = (InvalidInput, InputTooLarge, NotReady, Busy, Internal)


class ConfigError(ValueError):
    """A bad setting or model found at start-up: the service refuses to start, no request is at fault.

    Not a ``NerError``: it never becomes a response; adapters let it fail the worker's start
    (TorchServe, Triton), with this message in the log.
    """
