"""`flitstack`: one command for people — demo, generate, sandbox, runs, mapping, rollback.

Each subcommand lives in the module that owns its work; this file only dispatches, and imports a
subcommand's module only when that subcommand runs (so `flitstack generate` never loads Dagster).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Each module defines `configure(parser)` and `run(args) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("flitstack_dagster.demo", "generate an export and migrate it into the local Pipedrive sandbox"),
    "generate": ("flitstack_dagster.novo.generator.command", "write a synthetic Novo export bundle"),
    "verify-bundle": ("flitstack_dagster.novo.command", "check a Novo export bundle against its manifest"),
    "sandbox": ("flitstack_dagster.sandbox.command", "run the local Pipedrive sandbox"),
    "runs": ("flitstack_dagster.runs_command", "register and list migration runs"),
    "mapping": ("flitstack_dagster.mapping.command", "approve the proposed mapping"),
    "rollback": ("flitstack_dagster.rollback_command", "undo what a migration run did in Pipedrive"),
    "repair": ("flitstack_dagster.repair_command", "rebuild a run's id map from what the Pipedrive account holds"),
}


def main(argv: list[str] | None = None) -> int:
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
    from flitstack_dagster.errors import UserError

    try:
        return int(modules[args.command].run(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
