"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class ToylabError(Exception):
    """Bad input or state that the user can fix; the message names the value and what is allowed."""
