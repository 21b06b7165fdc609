"""Tables of the service.

Processed tables (instances, webhook deliveries) carry the engine's columns from `LeasedMixin`:
a row is due when `next_attempt_at <= now` and it is not leased; a row with `next_attempt_at`
NULL needs no work. Leases (`lock_owner`, `lock_token`, `lock_expires_at`) make a claim
exclusive across workers and replicas and expire when a process dies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from novita_manager.domain.statuses import CreateState
from novita_manager.store.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class LeasedMixin:
    """Engine bookkeeping shared by every table a pipeline processes."""

    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    lock_owner: Mapped[str | None] = mapped_column(String(100))
    lock_token: Mapped[str | None] = mapped_column(String(64))
    lock_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Instance(LeasedMixin, Base):
    """A managed instance: the user's request, its progress and the last known upstream state."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # The operation the pipeline is driving: create, start, stop, delete (None when idle).
    operation: Mapped[str | None] = mapped_column(String(20))
    operation_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Operation requests (table operation_requests): `request_seq` is the seq of the last one
    # the API accepted, `consumed_seq` the last one the pipeline resolved or took up. Only the
    # API writes the first and only the lease holder the second, so neither overwrites the other;
    # a row with request_seq > consumed_seq has requests waiting.
    request_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    consumed_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Whether (and when) the upstream call of the current operation was last sent; observations
    # older than that say nothing about its effect.
    operation_issued: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    operation_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Create bookkeeping for exactly-once creation: a `domain.statuses.CreateState` value.
    create_state: Mapped[str] = mapped_column(
        String(20), default=CreateState.PENDING.value, nullable=False
    )
    create_attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)

    product_name: Mapped[str] = mapped_column(String(200))
    product_id: Mapped[str | None] = mapped_column(String(255))
    template_id: Mapped[str] = mapped_column(String(255))
    gpu_num: Mapped[int] = mapped_column(Integer)
    rootfs_size: Mapped[int] = mapped_column(Integer)
    region: Mapped[str] = mapped_column(String(100))
    cluster_id: Mapped[str | None] = mapped_column(String(255))
    billing_mode: Mapped[str] = mapped_column(String(20))
    price_per_hour: Mapped[float | None] = mapped_column(Float)
    webhook_url: Mapped[str | None] = mapped_column(Text)

    novita_instance_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    novita_status: Mapped[str | None] = mapped_column(String(40))
    # The last upstream observation (lenient summary: status, statusError, ports, spot fields).
    observation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    port_mappings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    connection_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    failure_reason: Mapped[str | None] = mapped_column(Text)

    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Spot life (migration 0003; docs/design.md "Spot life"): where it may run and at what price,
    # what to do when Novita reclaims it, and the recovery under way.
    regions: Mapped[list[Any] | None] = mapped_column(JSON)  # ordered codes, or ["any"]
    max_price_per_hour: Mapped[float | None] = mapped_column(Float)
    fallback_to_on_demand: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False
    )
    requested_billing_mode: Mapped[str | None] = mapped_column(String(20))  # None: billing_mode
    cluster_name: Mapped[str | None] = mapped_column(String(100))
    on_reclaim: Mapped[str] = mapped_column(
        String(20), default="none", server_default="none", nullable=False
    )
    max_recoveries: Mapped[int] = mapped_column(
        Integer, default=3, server_default="3", nullable=False
    )
    recoveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    recovery: Mapped[str | None] = mapped_column(String(20))  # restart|migrate|recreate under way
    last_recovery_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replaces_novita_id: Mapped[str | None] = mapped_column(String(64))  # recreate: the old one
    spot_status: Mapped[str | None] = mapped_column(String(20))
    reclaim_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # set once announced

    # Costs and limits (migration 0004; domain/costs.py, domain/limits.py). The open billed
    # period is `billing_since` at `billing_rate` USD/h; closed ones are `billing_periods` rows,
    # summed in `billed_seconds`/`billed_cost`.
    billing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    billing_rate: Mapped[float | None] = mapped_column(Float)
    billed_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    billed_cost: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    auto_stop_after: Mapped[float | None] = mapped_column(Float)
    auto_delete_after: Mapped[float | None] = mapped_column(Float)
    idle_stop_after: Mapped[float | None] = mapped_column(Float)
    max_cost: Mapped[float | None] = mapped_column(Float)
    idle_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    gpu_utilization: Mapped[float | None] = mapped_column(Float)
    limit_fired: Mapped[str | None] = mapped_column(String(100))  # marker of the last one fired
    expiry_warned: Mapped[str | None] = mapped_column(String(100))  # marker last warned about
    operation_cause: Mapped[str | None] = mapped_column(String(20))  # domain.limits.Cause

    __table_args__ = (Index("ix_instances_due", "next_attempt_at", "lock_expires_at"),)


class InstanceEvent(Base):
    """One status change of an instance, with its time and reason (history, never updated)."""

    __tablename__ = "instance_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    novita_status: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)


class OperationRequest(Base):
    """One start, stop or delete the API accepted, and its outcome (never deleted).

    state: pending, in_progress, succeeded, failed, superseded, refused (domain.requests).
    """

    __tablename__ = "operation_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    # The seq of the request this one joined (the same operation, asked again): it shares that
    # request's outcome.
    joins_seq: Mapped[int | None] = mapped_column(Integer)
    # Who asked: a domain.limits.Cause value (`user`, or the limit that fired).
    cause: Mapped[str | None] = mapped_column(String(20))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("instance_id", "seq"),)


class BillingPeriod(Base):
    """A closed billed period of an instance at one rate (USD per hour), never updated.

    The open period lives on the instance row (`billing_since`, `billing_rate`)."""

    __tablename__ = "billing_periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    rate: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float)  # USD: seconds / 3600 x rate

    # One period per start: whoever records a close first wins, a repeat changes nothing.
    __table_args__ = (UniqueConstraint("instance_id", "started_at"),)


class WebhookDelivery(LeasedMixin, Base):
    """The outbox: one event to deliver, written in the same transaction as its state change.

    `id` is the Standard Webhooks `webhook-id`, stable across retries and redeliveries.
    status: a `domain.statuses.DeliveryStatus` value: pending, delivered, failed (retries
    exhausted or not retryable), skipped (no URL).
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(40))
    url: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: when, the status code or the error, and how long."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)


class EventLogEntry(Base):
    """One event of the live stream: a history entry or a webhook event, numbered by `seq`.

    Rows are written only by database triggers on `instance_events` and `webhook_deliveries`
    inserts (migration 0005), so every writer of either table feeds the log in its own
    transaction. `seq` is the order clients see (the SSE id): given in commit order, at once by
    the SQLite trigger (one writer), on PostgreSQL after commit by `store.events.sequence`
    (store/events.py says why).
    """

    __tablename__ = "event_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    history_id: Mapped[int | None] = mapped_column(
        ForeignKey("instance_events.id", ondelete="CASCADE")
    )
    delivery_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)

    # AUTOINCREMENT on SQLite: an id is never reused, even after the newest row is deleted.
    __table_args__ = {"sqlite_autoincrement": True}


class IdempotencyKey(Base):
    """A client's Idempotency-Key with a hash of its body and the first response."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str] = mapped_column(String(40))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ServiceLease(Base):
    """A named lease for work that one replica at a time should do (the status sync)."""

    __tablename__ = "service_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(100))
    token: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
