"""Errors meant for people: the CLI and Dagster show their message as is, never a traceback; and what
counts as a Ctrl-C, which is no error at all."""

import sys


class UserError(Exception):
    """Something the user can fix (bad bundle, missing approval, spent budget); the message says how."""


class BundleError(UserError):
    """A Novo export bundle is refused; the message names the file (and row/column where known)."""


# What a Ctrl-C arrives as, by (module, class name): Python's own, Dagster's when it runs a job in this
# process, DuckDB's during a query. Names, so the Dagster wiring can match its serialized errors too.
INTERRUPTS = (("builtins", "KeyboardInterrupt"), ("dagster", "DagsterExecutionInterruptedError"),
              ("duckdb", "InterruptException"))
INTERRUPT_NAMES = frozenset(name for _, name in INTERRUPTS)


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, also when a library (loaded, never imported here) turned it into its own error."""
    return any(isinstance(exc, cls) for module, name in INTERRUPTS
               if (cls := getattr(sys.modules.get(module), name, None)) is not None)
