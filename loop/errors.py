"""The one error type a face turns into a one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user (a file, a value, a missing device): one line, names the culprit."""
