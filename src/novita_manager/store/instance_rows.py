"""The instance view rendered straight from a row as the read path's driver returns it.

`views.render_instance` makes the view from a mapping of columns; for the API's reads that
meant, per row, a list, a dict of 40 columns, a decoder loop and a second dict (profile of `GET
/api/instances?limit=100`, issue 15: decoding and rendering were 60 % of the request beside the
fetch). Here one function unpacks the driver's row (`ROW_COLUMNS`, in that order) into locals
and builds the view's dict in one go, decoding only what is there: JSON text, timestamps (as
the API's text on SQLite, left to orjson on PostgreSQL), the open billing period. The limits'
`expiresAt` (rare: most rows have no limit) goes through `costs_view` as before. The fields and
their values are those of `render_instance`; tests/store/test_instance_reads.py compares both
with the typed view of the ORM row on many rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from novita_manager.domain.costs import cost_to_date
from novita_manager.store.costs_view import LIMITS, next_expiry
from novita_manager.store.views import VIEW_COLUMNS

# The columns the read path selects, in this order: the view's (`views.VIEW_COLUMNS`) but
# `failure_reason`. Two are computed in SQL: `cluster_id` falls back to the cluster the last
# observation named, and `last_error` is `failure_reason` (when not empty) or `last_error`, as
# in `render_instance`.
ROW_COLUMNS: tuple[str, ...] = tuple(name for name in VIEW_COLUMNS if name != "failure_reason")
JSON_COLUMNS = ("port_mappings", "connection_details")  # text from both drivers

Time = Callable[[Any], Any]  # a stored timestamp (not None) as the view writes it
Moment = Callable[[Any], datetime]  # a stored timestamp (not None) as an aware datetime
Stale = Callable[[Mapping[str, Any]], bool]  # Runtime.staleness(now)
Renderer = Callable[[Sequence[Any], Stale, datetime], dict[str, Any]]


# Stored JSON texts remembered with their view: about 1.7 KiB per instance for both memos with
# the simulator's shapes (texts and views), so at most ~1.7 MiB; a page is at most 500 rows.
MEMO_SIZE = 1024


class Memo(dict[str, Any]):
    """The view of a stored JSON text (port mappings, connection details), by its text: the
    same text always gives the same view, and a row's are rewritten rarely, so repeated reads
    skip decoding and rebuilding them. Emptied when full (no LRU bookkeeping per hit). The
    views are shared between answers: nothing may change them (orjson only writes them)."""

    def __init__(self, build: Callable[[Any], Any]) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, text: str) -> Any:
        if len(self) >= MEMO_SIZE:
            self.clear()
        view = self[text] = self._build(orjson.loads(text))
        return view


def _ports(stored: Any) -> list[dict[str, Any]]:
    return [
        {"port": int(m["port"]), "endpoint": m.get("endpoint"), "type": m.get("type")}
        for m in stored or []
    ]


def _connection(stored: Any) -> dict[str, Any]:
    connection = stored or {}
    return {
        "ssh": connection.get("ssh"),
        "jupyter": connection.get("jupyter"),
        "webTerminal": connection.get("webTerminal"),
    }


_NO_PORTS = _ports(None)
_NO_CONNECTION = _connection(None)


def renderer(time: Time, moment: Moment) -> Renderer:
    """The row renderer for a driver whose timestamps `time` writes and `moment` reads."""
    ports_of, connection_of = Memo(_ports), Memo(_connection)

    def render(row: Sequence[Any], stale: Stale, now: datetime) -> dict[str, Any]:
        # In `ROW_COLUMNS` order (tests/store/test_instance_reads.py compares the result with
        # the ORM view field by field, so a column out of place fails there).
        (
            id_,
            name,
            status,
            novita_status,
            novita_instance_id,
            product_id,
            product_name,
            template_id,
            gpu_num,
            rootfs_size,
            region,
            cluster_id,
            billing_mode,
            price_per_hour,
            port_mappings,
            connection_details,
            created_at,
            started_at,
            ready_at,
            failed_at,
            stopped_at,
            deleted_at,
            last_error,
            last_synced_at,
            cluster_name,
            spot_status,
            reclaim_at,
            recoveries,
            billing_since,
            billing_rate,
            billed_seconds,
            billed_cost,
            _operation,
            auto_stop_after,
            auto_delete_after,
            idle_stop_after,
            max_cost,
            _idle_since,
            _limit_fired,
            *_total,  # a page's rows end with the total
        ) = row
        created = time(created_at)
        synced = None if last_synced_at is None else time(last_synced_at)
        cost, seconds = cost_to_date(
            billed_cost,
            billed_seconds,
            None if billing_since is None else moment(billing_since),
            billing_rate,
            now,
        )
        view = {
            "id": id_,
            "name": name,
            "status": status,
            "novitaStatus": novita_status,
            "novitaInstanceId": novita_instance_id,
            "productId": product_id,
            "productName": product_name,
            "templateId": template_id,
            "gpuNum": gpu_num,
            "rootfsSize": rootfs_size,
            "region": region,
            "clusterId": cluster_id,
            "billingMode": billing_mode,
            "pricePerHour": price_per_hour,
            "portMappings": _NO_PORTS if port_mappings is None else ports_of[port_mappings],
            "connectionDetails": (
                _NO_CONNECTION if connection_details is None else connection_of[connection_details]
            ),
            "createdAt": created,
            "startedAt": None if started_at is None else time(started_at),
            "readyAt": None if ready_at is None else time(ready_at),
            "failedAt": None if failed_at is None else time(failed_at),
            "stoppedAt": None if stopped_at is None else time(stopped_at),
            "deletedAt": None if deleted_at is None else time(deleted_at),
            "lastError": last_error,
            "lastSyncedAt": synced,
            "stale": stale(
                {
                    "novita_instance_id": novita_instance_id,
                    "status": status,
                    "last_synced_at": synced,
                    "created_at": created,
                }
            ),
            "cluster": cluster_name,
            "spotStatus": spot_status,
            "reclaimAt": None if reclaim_at is None else time(reclaim_at),
            "recoveries": recoveries or 0,
            "costToDate": cost,
            "billedSeconds": seconds,
            "expiresAt": None,
        }
        if (
            auto_stop_after is not None
            or auto_delete_after is not None
            or idle_stop_after is not None
            or max_cost is not None
        ):  # `costs_view.LIMITS`: a limit is set (most rows have none)
            columns = dict(zip(ROW_COLUMNS, row, strict=False))  # (a page: the total after)
            for name in ("created_at", "ready_at", "billing_since", "idle_since"):
                if columns[name] is not None:
                    columns[name] = moment(columns[name])
            view["expiresAt"] = next_expiry(columns)  # a datetime: orjson writes it
        return view

    return render


assert set(ROW_COLUMNS[33:37]) == set(LIMITS)  # the limits `render` looks at
