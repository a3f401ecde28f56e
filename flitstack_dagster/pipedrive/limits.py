"""Limits Pipedrive itself sets, each declared once for the client, the sandbox and every stage."""

# Pipedrive refuses an attachment larger than this (413 on upload).
MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_FILE_MB = MAX_FILE_BYTES // (1024 * 1024)


def file_limit_text() -> str:
    """The file limit as people read it: "25 MB"."""
    return f"{MAX_FILE_MB} MB"
