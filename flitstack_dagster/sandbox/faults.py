"""Fault injection: off by default, seeded, configurable at start and through the admin channel."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field, fields


@dataclass
class FaultConfig:
    error_rate: float = 0.0  # share of requests answered 500/502/503 before doing anything
    error_statuses: tuple[int, ...] = (500, 502, 503)
    latency_ms: int = 0  # added to every Pipedrive-surface request
    drop_rate: float = 0.0  # share of requests whose connection is closed without a response
    commit_then_fail_rate: float = 0.0  # share of writes that happen, then answer 5xx or drop
    commit_then_fail_mode: str = "error"  # "error" (5xx answer) or "drop" (connection closed)
    seed: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["error_statuses"] = list(self.error_statuses)
        return d

    @classmethod
    def from_dict(cls, data: dict, base: "FaultConfig | None" = None) -> "FaultConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        cur = (base or cls()).to_dict()
        cur.update(data)
        cfg = cls(**cur)
        cfg.error_statuses = tuple(int(s) for s in cfg.error_statuses)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for name in ("error_rate", "drop_rate", "commit_then_fail_rate"):
            v = getattr(self, name)
            if not (0.0 <= float(v) <= 1.0):
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if self.commit_then_fail_mode not in ("error", "drop"):
            raise ValueError("commit_then_fail_mode must be 'error' or 'drop'")
        for s in self.error_statuses:
            if s < 500 or s > 599:
                raise ValueError("error_statuses must be 5xx")


@dataclass
class FaultState:
    config: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self.injected: dict[str, int] = {"error": 0, "drop": 0, "commit_then_fail": 0}

    def set(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def pick_status(self) -> int:
        with self._lock:
            return self._rng.choice(list(self.config.error_statuses))

    def count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] = self.injected.get(kind, 0) + 1
