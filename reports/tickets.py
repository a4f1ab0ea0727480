"""Ticket report: how fast faults are acknowledged and repaired, per camera, district or any tag.

Stages of a ticket (storage/tickets.py): **detect** (`detected_us`, when the earliest camera's fault
began) → **acknowledge** (`acked_us`, a technician took it) → **repair** (`closed_us`: every camera
back, or resolved by hand; a ticket closed because its camera was removed is not repaired). Over a
window [start_us, end_us) the report counts the tickets *detected* inside it and gives, per row:

- **mtta_s**: mean detect → acknowledge, over the tickets acknowledged;
- **ack_to_repair_s**: mean acknowledge → repair, over the tickets both acknowledged and repaired;
- **mttr_s**: mean detect → repair, over the tickets repaired (acknowledged or not);
- **open**: of those tickets, how many are still open.

Rows: per camera (`by=None`: a correlated ticket counts once for each of its cameras), or per value
of a tag (`by="district"`, `"uplink"`, …: a ticket counts once for each distinct value among its
cameras; cameras without the tag are grouped under "(none)").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from reports.tabular import rows_to_csv, rows_to_json
from storage.catalog import Catalog
from storage.tickets import CAMERA_REMOVED, Ticket, list_tickets

__all__ = ["TicketReportRow", "ticket_report", "ticket_rows", "to_csv", "to_json"]


@dataclass(slots=True)
class TicketReportRow:
    key: str  # camera id, or the tag value
    tickets: int
    acknowledged: int
    repaired: int
    open: int
    mtta_s: float | None
    ack_to_repair_s: float | None
    mttr_s: float | None


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def _row(key: str, ts: Sequence[Ticket]) -> TicketReportRow:
    tta = [(t.acked_us - t.detected_us) / 1e6 for t in ts if t.acked_us is not None]
    fixed = [t for t in ts if t.closed_us is not None and t.close_reason != CAMERA_REMOVED]
    a2r = [(t.closed_us - t.acked_us) / 1e6 for t in fixed if t.acked_us is not None]
    ttr = [(t.closed_us - t.detected_us) / 1e6 for t in fixed]
    return TicketReportRow(
        key=key,
        tickets=len(ts),
        acknowledged=len(tta),
        repaired=len(ttr),
        open=sum(1 for t in ts if t.status == "open"),
        mtta_s=_mean(tta),
        ack_to_repair_s=_mean(a2r),
        mttr_s=_mean(ttr),
    )


def ticket_rows(found: Sequence[Ticket], by: str | None = None) -> list[TicketReportRow]:
    """Pure: tickets → report rows (see the module doc)."""
    groups: dict[str, list[Ticket]] = defaultdict(list)
    for t in found:
        keys = {c.camera_id for c in t.cameras} if by is None else {c.tags.get(by) or "(none)" for c in t.cameras}
        for k in keys or {"(none)"}:
            groups[k].append(t)
    return [_row(k, groups[k]) for k in sorted(groups)]


def ticket_report(catalog: Catalog, start_us: int, end_us: int, *, by: str | None = None) -> list[TicketReportRow]:
    found = list_tickets(catalog, detected_from_us=start_us, detected_to_us=end_us, limit=10**9)
    return ticket_rows(found, by)


def to_csv(rows: Sequence[TicketReportRow]) -> str:
    """One header line and one line per row; empty cells for unknown values."""
    return rows_to_csv(rows, TicketReportRow)


def to_json(rows: Sequence[TicketReportRow]) -> str:
    return rows_to_json(rows)
