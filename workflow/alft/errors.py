"""User-facing errors: each names the file, row or config key at fault."""


class AlftError(Exception):
    """An error caused by bad input, reported without a traceback by the CLI."""


class DataError(AlftError):
    """A data file is missing, unreadable, or has a malformed row."""


class ConfigError(AlftError):
    """A configuration value is missing or invalid."""
