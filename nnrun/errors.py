"""Errors a user can act on. The CLI prints their message on one line and exits with exit_code."""


class NnrunError(Exception):
    """A failure at run time (exit code 1)."""

    exit_code = 1


class ConfigError(NnrunError):
    """A config, override or command-line value is wrong (exit code 2)."""

    exit_code = 2


class DataError(ConfigError):
    """A data file is missing, unreadable or not in the declared format (exit code 2)."""


class DownloadError(NnrunError):
    """A named dataset could not be fetched (exit code 1)."""
