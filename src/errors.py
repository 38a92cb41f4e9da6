"""The one exception type that the CLI turns into a single readable line."""


class SafetynetError(Exception):
    """A problem the user can fix: the message names the file, the column or key, and the fix."""
