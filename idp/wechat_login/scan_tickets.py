"""Scan-to-sign-in tickets, shared by every IdP process: in Redis when `IDP_REDIS_URL` is set, in
the database otherwise. Every change of status is one atomic compare-and-set, so a ticket is
answered once and used once however many processes race for it.

    waiting ──scan──▶ scanned ──confirm──▶ confirmed ──browser continues──▶ used
        └───────────────┴──────refuse───▶ refused          (any of them ──2 min──▶ expired)
        └───────────────┴───────────────────┴──browser cancels──▶ cancelled

A ticket names the mini-program (`appid`) whose code shows it: only that mini-program answers it.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from flask import Flask
from sqlalchemy import Engine, Table, delete, insert, select, update

from idp.wechat_login.models import WeChatScanTicket

TABLE = cast(Table, WeChatScanTicket.__table__)
# Expired rows and keys are kept a little, so a late poll learns "expired" rather than "unknown".
EXPIRED_GRACE = 300.0
# A ticket confirmed just before its end leaves the browser this long to sign in with it.
FINISH_GRACE = 30.0
CAS_ATTEMPTS = 5


P = ParamSpec("P")
R = TypeVar("R")


class TicketStoreUnavailable(Exception):
    """Redis did not answer: scan-to-sign-in fails closed (503) until it does; no ticket moves
    without the store that every process shares."""


class Status:
    WAITING = "waiting"
    SCANNED = "scanned"
    CONFIRMED = "confirmed"
    REFUSED = "refused"
    USED = "used"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNANSWERED = (WAITING, SCANNED)


@dataclass(frozen=True)
class ScanTicket:
    ticket: str
    browser_hash: str
    status: str
    account_id: str | None
    site: str
    user_agent: str
    network: str
    created_at: float
    expires_at: float
    # The mini-program whose code was drawn; "" (a ticket from before the field) matches none.
    appid: str = ""

    def seen_at(self, now: float) -> ScanTicket:
        """Expiry is read, not written: a ticket past its time is expired in every store."""
        limit = self.expires_at + (FINISH_GRACE if self.status == Status.CONFIRMED else 0.0)
        if now >= limit and self.status != Status.USED:
            return replace(self, status=Status.EXPIRED)
        return self


class ScanTicketStore(Protocol):
    def create(self, ticket: ScanTicket) -> None: ...

    def get(self, ticket_id: str) -> ScanTicket | None:
        """None when unknown (or long gone); status `expired` past its time."""

    def move(
        self, ticket_id: str, from_statuses: tuple[str, ...], to_status: str, account_id: str | None
    ) -> ScanTicket | None:
        """Atomically: when the ticket is live and in one of `from_statuses`, it takes
        `to_status` (and `account_id`, when given); returns it changed, else None."""

    def claim_poll(self, ticket_id: str, seconds: float) -> bool:
        """True when no other request is waiting on this ticket (one open poll per browser)."""

    def release_poll(self, ticket_id: str) -> None: ...


def scan_ticket_store(app: Flask) -> ScanTicketStore:
    from idp.extensions import db

    redis_client = app.extensions.get("idp_redis")
    if redis_client is not None:
        return RedisScanTicketStore(redis_client)
    return DatabaseScanTicketStore(db.engine)


# --- Redis -------------------------------------------------------------------------------------

# Replace the value only if it is still what we read: the compare-and-set of every move.
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""


def _redis_call(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        import redis

        try:
            return method(*args, **kwargs)
        except redis.RedisError:
            raise TicketStoreUnavailable() from None

    return guarded


class RedisScanTicketStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._compare_and_set = redis.register_script(_COMPARE_AND_SET)

    @_redis_call
    def create(self, ticket: ScanTicket) -> None:
        ttl = max(1, int(ticket.expires_at - time.time() + EXPIRED_GRACE))
        self._redis.set(_key(ticket.ticket), json.dumps(asdict(ticket)), ex=ttl, nx=True)

    @_redis_call
    def get(self, ticket_id: str) -> ScanTicket | None:
        raw = self._redis.get(_key(ticket_id))
        return _decode(raw).seen_at(time.time()) if raw is not None else None

    @_redis_call
    def move(
        self, ticket_id: str, from_statuses: tuple[str, ...], to_status: str, account_id: str | None
    ) -> ScanTicket | None:
        for _ in range(CAS_ATTEMPTS):
            raw = self._redis.get(_key(ticket_id))
            if raw is None:
                return None
            current = _decode(raw)
            if current.seen_at(time.time()).status not in from_statuses:
                return None
            changed = replace(
                current, status=to_status, account_id=account_id or current.account_id
            )
            encoded = json.dumps(asdict(changed))
            if self._compare_and_set(keys=[_key(ticket_id)], args=[raw, encoded]):
                return changed
        return None  # contended beyond reason: the caller answers as if someone else won

    @_redis_call
    def claim_poll(self, ticket_id: str, seconds: float) -> bool:
        return bool(self._redis.set(_poll_key(ticket_id), 1, nx=True, ex=max(1, int(seconds))))

    @_redis_call
    def release_poll(self, ticket_id: str) -> None:
        self._redis.delete(_poll_key(ticket_id))


def _key(ticket_id: str) -> str:
    return f"idp:wechat-scan:{ticket_id}"


def _poll_key(ticket_id: str) -> str:
    return f"idp:wechat-scan-poll:{ticket_id}"


def _decode(raw: bytes | str) -> ScanTicket:
    return ScanTicket(**json.loads(raw))


# --- database ----------------------------------------------------------------------------------


class DatabaseScanTicketStore:
    """Each call is a short transaction of its own, outside the request's: a long-poll re-reads
    fresh rows (a SQLite read transaction would keep showing its first snapshot)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, ticket: ScanTicket) -> None:
        with self._engine.begin() as connection:
            stale = TABLE.c.expires_at < time.time() - EXPIRED_GRACE
            connection.execute(delete(TABLE).where(stale))
            connection.execute(insert(TABLE).values(**asdict(ticket), poll_until=0.0))

    def get(self, ticket_id: str) -> ScanTicket | None:
        with self._engine.begin() as connection:
            row = connection.execute(
                select(*(TABLE.c[name] for name in _FIELDS)).where(TABLE.c.ticket == ticket_id)
            ).first()
        return ScanTicket(**row._asdict()).seen_at(time.time()) if row is not None else None

    def move(
        self, ticket_id: str, from_statuses: tuple[str, ...], to_status: str, account_id: str | None
    ) -> ScanTicket | None:
        values: dict[str, Any] = {"status": to_status}
        if account_id is not None:
            values["account_id"] = account_id
        grace = FINISH_GRACE if from_statuses == (Status.CONFIRMED,) else 0.0
        live = TABLE.c.expires_at > time.time() - grace
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(TABLE)
                .where(TABLE.c.ticket == ticket_id, TABLE.c.status.in_(from_statuses), live)
                .values(**values)
            ).rowcount
        return self.get(ticket_id) if changed == 1 else None

    def claim_poll(self, ticket_id: str, seconds: float) -> bool:
        now = time.time()
        with self._engine.begin() as connection:
            claimed = connection.execute(
                update(TABLE)
                .where(TABLE.c.ticket == ticket_id, TABLE.c.poll_until < now)
                .values(poll_until=now + seconds)
            ).rowcount
        return claimed == 1

    def release_poll(self, ticket_id: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(TABLE).where(TABLE.c.ticket == ticket_id).values(poll_until=0.0)
            )


_FIELDS = tuple(ScanTicket.__dataclass_fields__)
