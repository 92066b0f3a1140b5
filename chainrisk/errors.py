"""User-facing error type: one clear line naming the problem and the fix, printed without a traceback."""


class UserError(Exception):
    """An error the user can fix (bad input, missing tool, unreachable endpoint); the CLI prints it as one line."""
