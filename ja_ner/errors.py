"""The one error hierarchy of the core; adapters map ``code`` to their transport."""

from __future__ import annotations

# Characters of one client-supplied value a message may show (a message never echoes a whole body).
SHOWN_CHARS = 40
# Client-supplied names one message may list (unknown fields or options).
SHOWN_NAMES = 5


def shown(value: object, *, bare: bool = False) -> str:
    """A client-supplied value as an error message may show it: bounded, printable, never raising.

    Strings are cut to ``SHOWN_CHARS`` and ``repr``-escaped (so a lone surrogate or a control
    character cannot break the JSON answer); with ``bare`` a short printable string is shown as is.
    Arrays and objects are named, not printed; integers too long to print are described.
    """
    if isinstance(value, str):
        if bare and len(value) <= SHOWN_CHARS and value.isprintable() and value.isascii():
            return value
        more = f"... ({len(value)} characters)" if len(value) > SHOWN_CHARS else ""
        return repr(value[:SHOWN_CHARS]) + more
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 128 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def shown_names(names: list[object]) -> str:
    """Up to ``SHOWN_NAMES`` client-supplied names, comma-separated (``shown``, bare), then how many more."""
    listed = ", ".join(shown(n, bare=True) for n in names[:SHOWN_NAMES])
    return listed + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


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
