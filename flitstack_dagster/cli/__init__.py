"""`flitstack`: one command for people, from a Novo export to a verified Pipedrive migration (see COMMAND -h).

Each subcommand has its own module in this package and calls into the stage that owns its work; this
file only dispatches, and imports a subcommand's module only when that subcommand runs (so `flitstack
generate` never loads Dagster).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from flitstack_dagster.core.errors import is_interrupt
from flitstack_dagster.core.settings import debug

# name -> (module, one-line help). Each module defines `configure(parser)` and `run(args) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("flitstack_dagster.cli.demo", "generate an export and migrate it into the local Pipedrive sandbox"),
    "generate": ("flitstack_dagster.cli.generate", "write a synthetic Novo export bundle"),
    "verify-bundle": ("flitstack_dagster.cli.verify_bundle", "check a Novo export bundle against its manifest"),
    "sandbox": ("flitstack_dagster.cli.sandbox", "run the local Pipedrive sandbox"),
    "runs": ("flitstack_dagster.cli.runs", "register and list migration runs"),
    "migrate": ("flitstack_dagster.cli.migrate", "run a registered run's `migrate` job (as the UI does) and print the outcome"),
    "status": ("flitstack_dagster.cli.status", "where a run is: stage, records done, tokens, days left, what blocks"),
    "summary": ("flitstack_dagster.cli.summary", "print a run's summary: accounting, set-asides, loads, verification, reports"),
    "mapping": ("flitstack_dagster.cli.mapping", "approve the proposed mapping"),
    "calendar": ("flitstack_dagster.cli.calendar", "days of Pipedrive's token budget a run needs, per plan and seats"),
    "doctor": ("flitstack_dagster.cli.doctor", "check the settings and the Pipedrive account they point at"),
    "rollback": ("flitstack_dagster.cli.rollback", "undo what a migration run did in Pipedrive"),
    "repair": ("flitstack_dagster.cli.repair", "rebuild a run's id map from what the Pipedrive account holds"),
}

STOPPED = "stopped; run the same command again to resume"
_depth = 0  # nested main() calls (the demo runs `generate` through it) leave reporting to the outermost


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Problems a person can fix print "error: ..." (exit 2), Ctrl-C prints
    STOPPED (exit 130), a bug prints one line (exit 1; the traceback only with FLITSTACK_DEBUG=1)."""
    global _depth
    _depth += 1
    quiet_interrupt_tracebacks()
    retries = logging.getLogger("flitstack_dagster.pipedrive")
    level = retries.level
    if not debug():  # the client logs each retry it makes; at a terminal the outcome's one line is enough
        retries.setLevel(logging.ERROR)
    try:
        return _dispatch(argv)
    except SystemExit:
        raise
    except BaseException as exc:
        if _depth > 1:
            raise
        return _report(exc)
    finally:
        _depth -= 1
        retries.setLevel(level)


class _NotAnInterrupt(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def quiet_interrupt_tracebacks() -> None:
    """Ctrl-C prints one sentence: a library that reports the interrupt as its own error (a connection
    pool closing, a finalizer) would print a traceback above it. Other errors still print."""
    if logging.lastResort and not any(isinstance(f, _NotAnInterrupt) for f in logging.lastResort.filters):
        logging.lastResort.addFilter(_NotAnInterrupt())
    hook = sys.unraisablehook
    if getattr(hook, "quiet_interrupts", False):
        return

    def unraisable(info, _previous=hook):
        if not isinstance(info.exc_value, KeyboardInterrupt):
            _previous(info)

    unraisable.quiet_interrupts = True
    sys.unraisablehook = unraisable


def _dispatch(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="flitstack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    wanted = (argv if argv is not None else sys.argv[1:])[:1]
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if wanted == [name]:
            modules[name] = importlib.import_module(module)
            modules[name].configure(p)
    args = parser.parse_args(argv)
    return int(modules[args.command].run(args) or 0)


def _report(exc: BaseException) -> int:
    """Print what went wrong for a person (the token scrubbed) and return the exit code."""
    from flitstack_dagster.core.errors import UserError
    from flitstack_dagster.core.settings import scrub

    if is_interrupt(exc):
        print(STOPPED, file=sys.stderr)
        return 130
    message = str(exc) if isinstance(exc, UserError) else _account_problem(exc)
    if message is not None:
        for line in message.splitlines() or [""]:
            print(f"error: {scrub(line)}", file=sys.stderr)
        return 2
    if debug():
        print(scrub("".join(traceback.format_exception(exc))), end="", file=sys.stderr)
    else:
        text = " ".join(str(exc).split())[:500]
        print(scrub(f"unexpected error: {type(exc).__name__}: {text} (set FLITSTACK_DEBUG=1 for details)"),
              file=sys.stderr)
    return 1


def _account_problem(exc: BaseException) -> str | None:
    """A refused token or an unreachable host, named, or what Pipedrive answered; None for a bug."""
    if "flitstack_dagster.pipedrive" not in sys.modules:
        return None
    from flitstack_dagster.pipedrive.errors import PipedriveError
    from flitstack_dagster.pipedrive.problems import human_message
    from flitstack_dagster.core.settings import SettingError, pipedrive_settings

    try:
        host = pipedrive_settings().host
    except SettingError:
        host = None
    return human_message(exc, host) or (str(exc) if isinstance(exc, PipedriveError) else None)

