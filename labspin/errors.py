"""The one error type that the CLI turns into a single line and exit status 2."""


class UserError(Exception):
    """Bad input from the user: a file, field or value that cannot be used.

    The message names the file/field and the reason, fits on one line, and is shown
    without a traceback.
    """
