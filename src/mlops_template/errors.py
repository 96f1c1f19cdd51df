"""The one error the commands expect: a repository or template they cannot use."""


class ToolError(Exception):
    """An expected problem, reported as one line (never a traceback)."""
