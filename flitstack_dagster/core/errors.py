"""Errors meant for people: the CLI and Dagster show their message as is, never a traceback."""


class UserError(Exception):
    """Something the user can fix (bad bundle, missing approval, spent budget); the message says how."""


class BundleError(UserError):
    """A Novo export bundle is refused; the message names the file (and row/column where known)."""
