"""What the staged data says about each work-order status: the evidence behind a status proposal.

Per status: its work orders and the share of them with a completion date; from the status log, how
often a history ends there (terminal), starts there (first), is left again (moves on), how often it
is entered from a closed status (re-entry) and the median hours spent in it before the next change
(dwell). Set-based SQL over `staging.stg_work_orders` and `staging.stg_status_log`.
"""

from __future__ import annotations

from pydantic import BaseModel

from flitstack_dagster.core.duck import has_table


class StatusEvidence(BaseModel):
    work_orders: int = 0
    completed: int = 0  # of its work orders, those with a Date Completed
    histories: int = 0  # work orders whose status log enters it
    terminal: int = 0  # ... and whose log ends there
    first: int = 0  # ... and whose log starts there
    entries: int = 0  # times the log enters it
    from_closed: int = 0  # ... coming from a closed status (re-entry)
    dwell_hours: float | None = None  # median time in it before the next change

    @property
    def completed_share(self) -> float | None:
        return self.completed / self.work_orders if self.work_orders else None

    @property
    def terminal_share(self) -> float | None:
        return self.terminal / self.histories if self.histories else None

    @property
    def first_share(self) -> float | None:
        return self.first / self.histories if self.histories else None

    @property
    def reentry_share(self) -> float | None:
        return self.from_closed / self.entries if self.entries else None


def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'staging' AND table_name = ?",
        [table]).fetchall()}


def _work_order_counts(con, run_key: str, out: dict[str, StatusEvidence]) -> None:
    if not has_table(con, "staging", "stg_work_orders") or "date_completed" not in _columns(con, "stg_work_orders"):
        return
    for s, n, done in con.execute(
        "SELECT trim(status), count(*), count(date_completed) FROM staging.stg_work_orders "
        "WHERE _run_key = ? AND coalesce(trim(status), '') <> '' GROUP BY 1", [run_key]).fetchall():
        ev = out.setdefault(str(s), StatusEvidence())
        ev.work_orders, ev.completed = int(n), int(done)


def _log_counts(con, run_key: str, out: dict[str, StatusEvidence], closed: set[str]) -> None:
    cols = _columns(con, "stg_status_log") if has_table(con, "staging", "stg_status_log") else set()
    if not {"wo_number", "to_status", "from_status"} <= cols:
        return
    order = "changed_at, _row_number" if "changed_at" in cols else "_row_number"
    dwell = "epoch(lead(changed_at) OVER w - changed_at) / 3600.0" if "changed_at" in cols else "NULL"
    # one window spec, so the log is sorted once; each work order has one first and one last step
    rows = con.execute(f"""
        SELECT s, count(DISTINCT wo_number), count(wo_number) FILTER (WHERE last),
               count(wo_number) FILTER (WHERE i = 1), count(*),
               count(*) FILTER (WHERE prev IN (SELECT unnest(?::VARCHAR[]))), median(dwell)
        FROM (SELECT wo_number, trim(to_status) AS s, trim(from_status) AS prev,
                     row_number() OVER w AS i, lead(_row_number) OVER w IS NULL AS last, {dwell} AS dwell
              FROM staging.stg_status_log WHERE _run_key = ? AND coalesce(trim(to_status), '') <> ''
              WINDOW w AS (PARTITION BY wo_number ORDER BY {order}))
        GROUP BY s""", [sorted(closed), run_key]).fetchall()
    for s, hist, term, first, entries, from_closed, dwell in rows:
        ev = out.setdefault(str(s), StatusEvidence())
        ev.histories, ev.terminal, ev.first, ev.entries, ev.from_closed = (
            int(hist), int(term), int(first), int(entries), int(from_closed))
        ev.dwell_hours = None if dwell is None else round(float(dwell), 1)


def status_evidence(con, run_key: str, closed_by_name: set[str]) -> dict[str, StatusEvidence]:
    """Evidence per status; a status counts as closed for re-entry when named so or mostly completed."""
    out: dict[str, StatusEvidence] = {}
    _work_order_counts(con, run_key, out)
    closed = set(closed_by_name) | {s for s, ev in out.items() if (ev.completed_share or 0) >= 0.8}
    _log_counts(con, run_key, out, closed)
    return dict(sorted(out.items()))


__all__ = ["StatusEvidence", "status_evidence"]
