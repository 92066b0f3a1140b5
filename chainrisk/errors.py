"""User-facing errors: the error type printed as one line without a traceback, and the secrets no line may show."""

from __future__ import annotations

import logging

#: Credentials seen in this process (parts of RPC URLs); `redact` hides them in whatever reaches the user.
_SECRETS: set[str] = set()
MASK = "***"


class UserError(Exception):
    """An error the user can fix (bad input, missing tool, unreachable endpoint); the CLI prints it as one line.

    Registered secrets are hidden when the error is made, so wherever its text goes (stderr, logs, the runs
    table) no credential goes with it, even one a URL mask does not know the shape of."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


def hide_secrets(secrets: set[str]) -> None:
    """Registers credentials (an RPC URL's password or API key) that no error line or log record may show."""
    _SECRETS.update(s for s in secrets if s)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***; longest first, so a secret containing another one
    is hidden whole."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def first_line(exc: BaseException) -> str:
    """An exception's first line of text, or its class name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(text: str) -> str:
    """A message as one line (DuckDB and HTTP libraries put context on further lines), secrets hidden."""
    return redact(" ".join(line.strip() for line in text.splitlines() if line.strip()))


class RedactingFilter(logging.Filter):
    """A handler filter that hides registered secrets in every record it lets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            message = redact(record.getMessage())
            record.msg, record.args = message, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
        return True
