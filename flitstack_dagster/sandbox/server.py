"""`SandboxServer`: the local Pipedrive, a real HTTP server on 127.0.0.1 in a background thread.

    with SandboxServer(state_path=tmp / "state.sqlite", plan="growth", seats=5) as sb:
        httpx.get(f"{sb.base_url}/api/v2/deals", headers={"x-api-token": sb.api_token})
        sb.usage(); sb.snapshot(); sb.set_faults(error_rate=0.1); sb.next_day(); sb.reset()
        sb.forget_creates(3, "deals")  # fault mode: lose the 3 newest acknowledged deal creates

`signals="documented"` (default) sends only the rate-limit signals Pipedrive documents;
`signals="extended"` adds the sandbox's token-budget insight headers (see ratelimit.py).

Every request commits its effects to the state database before it answers (see store.py), so the
sandbox can be killed at any moment without losing what it acknowledged; the large kinds' records stay
in the database, so a city-sized account (a million records) starts in a moment in flat memory.

Rehearsal mode: give the server the plan to rehearse and a `Clock`, and the client a
`rehearsal.SimulatedTime` of it: days of the plan's budget pass in minutes (see rehearsal.py).

v2 lives under {base_url}/api/v2/..., v1 under {base_url}/v1/... (and {base_url}/api/v1/...).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from flitstack_dagster.sandbox.app import Sandbox
from flitstack_dagster.sandbox.clock import Clock
from flitstack_dagster.sandbox.faults import FaultConfig
from flitstack_dagster.core.plans import find_plan, plans_form
from flitstack_dagster.sandbox.ratelimit import check_signals
from flitstack_dagster.sandbox.store import Store

__all__ = ["SandboxServer", "FaultConfig", "Clock"]


class _QuietDrops(logging.Filter):
    """Injected dropped connections are expected; keep them (and anything with a query string) out of logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "sandbox fault" in msg or "connection dropped" in msg:
            return False
        if record.exc_info and isinstance(record.exc_info[1], ConnectionAbortedError):
            return False
        return "api_token=" not in msg


def _log_config() -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"quiet": {"()": _QuietDrops}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "filters": ["quiet"],
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


class SandboxServer:
    def __init__(
        self,
        state_path: Path | None = None,
        plan: str = "growth",
        seats: int = 5,
        api_token: str | None = None,
        new_account_token: str | None = None,
        faults: FaultConfig | None = None,
        clock: Clock | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        admin_token: str | None = None,
        block_after: int = 20,
        block_window: float = 10.0,
        block_seconds: float = 60.0,
        signals: str = "documented",
    ) -> None:
        if find_plan(plan) is None:
            raise ValueError(f"plan must be {plans_form()}")
        plan = find_plan(plan).name
        if seats < 1:
            raise ValueError("seats must be >= 1")
        check_signals(signals)
        self.clock = clock or Clock()
        self.state_path = Path(state_path) if state_path else None
        # `api_token` replaces a saved account's token; `new_account_token` only names a new account's
        self.store = Store(self.state_path, self.clock, plan, seats, api_token or new_account_token or None,
                           replace_token=bool(api_token))
        self.sandbox = Sandbox(self.store, self.clock, faults, admin_token=admin_token,
                               block_after=block_after, block_window=block_window, block_seconds=block_seconds,
                               signals=signals)
        self.host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> "SandboxServer":
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(128)
        sock.set_inheritable(True)
        self._sock = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self.sandbox.app, log_config=_log_config(), access_log=False,
                                lifespan="off", timeout_keep_alive=5, h11_max_incomplete_event_size=None,
                                timeout_graceful_shutdown=2)  # Ctrl-C stops promptly even with clients still connected
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.store.start()
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="sandbox-uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("sandbox server failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start within 10 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self._server = None
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        self.store.close()

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until the server thread ends (Ctrl-C in the CLI)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    # -- addresses -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def api_token(self) -> str:
        return self.store.state["account"]["api_token"]

    @property
    def company_domain(self) -> str:
        return self.store.state["account"]["company_domain"]

    # -- admin ---------------------------------------------------------------------------------------------
    def usage(self) -> dict:
        return self.sandbox.usage()

    def snapshot(self) -> dict:
        return self.sandbox.snapshot()

    def set_faults(self, config: FaultConfig | None = None, **changes: Any) -> FaultConfig:
        if config is not None:
            self.sandbox.faults.set(config)
            return config
        return self.sandbox.set_faults(**changes)

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.store.mark_dirty()

    def next_day(self) -> None:
        self.clock.next_day()
        self.store.mark_dirty()

    def reset(self) -> None:
        self.sandbox.reset()

    def set_tokens_spent(self, tokens: int) -> None:
        """Pretend `tokens` were already spent today (to reach the daily budget quickly in tests)."""
        self.sandbox.set_tokens_spent(tokens)

    def patch_record(self, kind: str, record_id: int, changes: dict) -> dict:
        return self.sandbox.patch_record(kind, record_id, changes)

    def forget_creates(self, count: int, kind: str | None = None) -> list[dict]:
        """Fault mode: lose the `count` most recent acknowledged creates (of `kind`, e.g. "deals", or of
        any kind), as a store that lost writes would; the next creates get the same ids again."""
        return self.sandbox.forget_creates(count, kind)

    def flush(self) -> None:
        self.store.flush()
