"""`flitstack sandbox`: run the local Pipedrive sandbox until Ctrl-C.

Prints the base URL and where the API token is stored (the token file, never the token itself). A new
account takes `PIPEDRIVE_API_TOKEN` as its token when it is set; a saved account keeps its own, and a
different `PIPEDRIVE_API_TOKEN` replaces it only with `--token-from-env` (without it, one warning line
says so; neither token is shown).

`--from-account` starts a new sandbox account with a copy of the schema of the account PIPEDRIVE_BASE_URL
and PIPEDRIVE_API_TOKEN name (users, pipelines, stages, fields with their options, activity types),
read with GET requests only after showing their token cost and asking (or `--yes`); the new account
gets a token of its own. `--users FILE` makes a CSV file's users the sandbox account's users.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from flitstack_dagster.core.plans import PLAN_NAMES
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.settings import data_paths
from flitstack_dagster.sandbox.seed_users import read_users_csv


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 = any free port; default 8765)")
    parser.add_argument("--plan", default=None, choices=PLAN_NAMES,
                        help="default growth; with --from-account, the copied account's PIPEDRIVE_PLAN")
    parser.add_argument("--seats", type=int, default=None,
                        help="default 5; with --from-account, the copied account's PIPEDRIVE_SEATS")
    parser.add_argument("--state", type=Path, default=None,
                        help="state database (default: <data folder>/sandbox/state.sqlite; an old state.json next to it is migrated)")
    parser.add_argument("--latency-ms", type=int, default=0, help="fault injection: added latency")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fault injection: share of 5xx answers")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="fault injection: share of dropped connections")
    parser.add_argument("--commit-then-fail-rate", type=float, default=0.0,
                        help="fault injection: share of writes that happen and then fail")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--signals", default="documented", choices=["documented", "extended"],
                        help="rate-limit signals: only what Pipedrive documents (default), or also the "
                             "sandbox's daily token headers (x-daily-token-limit, x-daily-tokens-left)")
    parser.add_argument("--token-from-env", action="store_true",
                        help="make PIPEDRIVE_API_TOKEN the sandbox account's API token (replacing a saved one)")
    parser.add_argument("--from-account", action="store_true",
                        help="start a new sandbox account with a copy of the schema (users, pipelines, stages, "
                             "fields, activity types) of the account PIPEDRIVE_BASE_URL/PIPEDRIVE_API_TOKEN name; "
                             "reads only, and shows its token cost first")
    parser.add_argument("--yes", action="store_true", help="with --from-account: copy without asking")
    parser.add_argument("--users", type=Path, default=None, metavar="USERS_CSV",
                        help="make this CSV file's users (columns name, email, active_flag, is_admin, id) "
                             "the sandbox account's users")


def _env_token() -> str | None:
    return os.environ.get("PIPEDRIVE_API_TOKEN", "").strip() or None


def _chosen_token(args: argparse.Namespace) -> str | None:
    """The token the user asked the account to use, or None to keep the account's own."""
    if not args.token_from_env:
        return None
    token = _env_token()
    if not token:
        raise UserError("--token-from-env needs PIPEDRIVE_API_TOKEN to be set; set it, or leave out the option.")
    return token


def _copied_schema(args: argparse.Namespace, state: Path):
    """The schema of the account the settings name, read after the person agreed to its token cost."""
    from flitstack_dagster.pipedrive.client import PipedriveClient
    from flitstack_dagster.pipedrive.ratelimit import daily_budget
    from flitstack_dagster.pipedrive.schema_copy import SCHEMA_READS, read_account_schema, read_cost

    if args.token_from_env:
        raise UserError("--from-account starts a new account with a token of its own; leave out --token-from-env.")
    if _holds_account(state):
        raise UserError(f"--from-account copies into a new sandbox account, but {state} already holds one: pass "
                        f"--state with a new file (e.g. {state.with_name('copy.sqlite')}) or move that one away.")
    client = PipedriveClient.from_env()
    with client:
        budget = daily_budget(client.plan, client.seats or 1)
        print(f"Copying the schema of {client.host} (users, pipelines, stages, fields, activity types) reads it "
              f"with {len(SCHEMA_READS)} GET requests costing {read_cost(client.costs)} tokens of its daily budget "
              f"of {budget:,} (plan {client.plan}, {client.seats} seats; a list longer than one page of 500 "
              "costs its request again per page); nothing there is changed.", flush=True)
        if not args.yes and not _confirmed("Copy it into a new sandbox account? [y/N] "):
            raise UserError("stopped before reading anything: answer y to copy the account, or pass --yes.")
        schema = read_account_schema(client)
        if not any(u.get("is_admin") for u in schema.users):
            raise UserError(f"{client.host} listed no admin among its users (GET /v1/users), so the copy would have "
                            "no user for its API token; use the API token of an admin of that account.")
        print(f"  copied {schema.summary()}; spent {client.tokens_spent} tokens", flush=True)
    return schema


def _settle_plan(args: argparse.Namespace) -> None:
    """Plan and seats not given: a copy rehearses the copied account's (its settings), else growth, 5."""
    if args.from_account:
        from flitstack_dagster.core.settings import pipedrive_settings

        settings = pipedrive_settings()
        args.plan = args.plan if args.plan is not None else settings.plan
        args.seats = args.seats if args.seats is not None else settings.seats
    args.plan = args.plan if args.plan is not None else "growth"
    args.seats = args.seats if args.seats is not None else 5


def _confirmed(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:  # no one to answer (a script, CI)
        print()
        return False


def _holds_account(state: Path) -> bool:
    return any(p.exists() for p in (state.with_suffix(".sqlite"), state.with_suffix(".json")))


def _seed(server, copied, users: list[dict] | None, users_file: Path | None) -> None:
    """Install the copied schema and users, then the CSV's users over them."""
    from dataclasses import asdict

    from flitstack_dagster.sandbox.seed import install_schema, install_users

    if copied is not None:
        parts = asdict(copied)
        install_users(server.store, parts.pop("users"))
        install_schema(server.store, **parts)
    if users is not None:
        install_users(server.store, users)
        print(f"  {len(users)} users from {users_file.name} are the account's users")


def token_file(state_path: Path) -> Path:
    return state_path.with_name("api_token")


def run(args: argparse.Namespace) -> int:
    from flitstack_dagster.sandbox.faults import FaultConfig
    from flitstack_dagster.sandbox.server import SandboxServer

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}, not only on this machine")
    state = (args.state or data_paths().sandbox_state).resolve()
    users = read_users_csv(args.users) if args.users else None
    copied = _copied_schema(args, state) if args.from_account else None
    _settle_plan(args)
    try:
        faults = FaultConfig(error_rate=args.error_rate, latency_ms=args.latency_ms, drop_rate=args.drop_rate,
                             commit_then_fail_rate=args.commit_then_fail_rate, seed=args.fault_seed)
        faults.validate()
        # a copy of another account gets a token of its own: that account's token is never stored here
        server = SandboxServer(state_path=state, plan=args.plan, seats=args.seats, faults=faults, port=args.port,
                               host=args.host, api_token=None if copied else _chosen_token(args),
                               new_account_token=None if copied else _env_token(), signals=args.signals)
    except ValueError as e:
        raise UserError(str(e)) from e
    _seed(server, copied, users, args.users)
    if copied is None and _env_token() not in (None, server.api_token):
        print(f"warning: PIPEDRIVE_API_TOKEN differs from this sandbox account's token, which is kept (see "
              f"{token_file(state)}); run `flitstack sandbox --token-from-env` to make the account use it instead.")
    try:
        server.start()
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e}") from e
    tok = token_file(state)
    tok.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tok, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(server.api_token + "\n")
    print(f"Pipedrive sandbox running at {server.base_url}")
    print(f"  v2: {server.base_url}/api/v2/...   v1: {server.base_url}/v1/...   admin: {server.base_url}/_sandbox/")
    print(f"  plan {args.plan}, {args.seats} seats; {args.signals} rate-limit signals; state: {server.store.path}")
    print(f"  API token stored in {tok} (send it as header x-api-token)")
    stop = threading.Event()
    # Ctrl-C / SIGINT and SIGTERM both stop it, even when started with SIGINT ignored (a shell starts a
    # background job `cmd &` that way, a CI runner may too; Python then installs no KeyboardInterrupt).
    prev = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:  # the prompt is printed inside: a Ctrl-C right after it still stops the server cleanly
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in prev.items():
            signal.signal(sig, handler)
        server.stop()
        print("sandbox stopped; state saved")
    return 0
