"""Limits Pipedrive itself sets, each declared once for the client, the sandbox and every stage."""

# Pipedrive refuses an attachment larger than this (413 on upload).
MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_FILE_MB = MAX_FILE_BYTES // (1024 * 1024)
# A long-text (`text`) custom field holds "up to 65k characters"; the lower reading of "k" is taken, and
# the product uses the same bound for a note's text, whose size the API does not state.
LONG_TEXT_MAX_CHARS = 65_000


def file_limit_text() -> str:
    """The file limit as people read it: "25 MB"."""
    return f"{MAX_FILE_MB} MB"
