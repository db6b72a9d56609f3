"""Scan with the mini-program to sign in on a computer (小程序扫码登录).

The login page shows a mini-program code (wxacode.getUnlimited) whose `scene` is a fresh ticket:
32 URL-safe characters, valid two minutes, bound to the showing browser by a secret that only its
session holds (the ticket alone, which anyone looking at the screen can read, signs nobody in).
The mini-program opens its confirm page with the scene, shows who is asking, and answers; only
the mini-program whose code it is may answer. The waiting page learns the answer by long-polling,
shows which account confirmed, and signs in only when the person continues (a confirmed ticket
signs in that browser once); cancelling ends the ticket (RFC 6749 §10.12: login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from urllib.parse import urlsplit

from flask import current_app, request, session
from sqlalchemy import select

from idp.extensions import db
from idp.identity.accounts import resolve_account
from idp.identity.models import Account
from idp.oidc.context import issuer
from idp.wechat.models import WeChatApp, WeChatAppKind
from idp.wechat_login.requester import network_of, site_for
from idp.wechat_login.scan_tickets import ScanTicket, ScanTicketStore, Status, scan_ticket_store
from idp.wechat_login.upstream import client_for

CHANNEL = "website_scan"
AMR = "wechat_scan"
SESSION_KEY = "wechat_scan"
TICKET_TTL = 120.0  # two minutes, as the issue asks; WeChat's code itself never expires
DEFAULT_PAGE = "pages/scan/scan"
POLL_INTERVAL = 0.5
DECISIONS = {"confirm": Status.CONFIRMED, "refuse": Status.REFUSED}


class UnknownTicket(Exception):
    """No such ticket, or it expired: 404."""


class TicketAlreadyAnswered(Exception):
    """Confirmed, refused or used already: 409."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class NotConfirmed(Exception):
    """The browser tried to sign in with a ticket that is not (or no longer) confirmed."""


class WrongMiniProgram(Exception):
    """The caller's token is of another mini-program than the one whose code shows the ticket."""


# --- configuration -----------------------------------------------------------------------------


def scan_app() -> WeChatApp | None:
    """The mini-program whose code is shown: `IDP_WECHAT_SCAN_APPID`, else the oldest one."""
    appid = current_app.config.get("IDP_WECHAT_SCAN_APPID")
    query = select(WeChatApp).where(WeChatApp.kind == WeChatAppKind.MINIPROGRAM)
    if appid:
        query = query.where(WeChatApp.appid == appid)
    return db.session.scalars(query.order_by(WeChatApp.created_at, WeChatApp.appid)).first()


def store() -> ScanTicketStore:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cached: ScanTicketStore | None = app.extensions.get("idp_wechat_scan_store")
    if cached is None:
        cached = app.extensions["idp_wechat_scan_store"] = scan_ticket_store(app)
    return cached


# --- the browser's side ------------------------------------------------------------------------


def start_ticket(next_url: str, appid: str) -> ScanTicket:
    """A new ticket for this browser (replacing the one it had), bound by a session secret, for
    the mini-program `appid` whose code will show it."""
    browser_secret = secrets.token_urlsafe(32)
    now = time.time()
    ticket = ScanTicket(
        ticket=secrets.token_urlsafe(24),  # 32 characters of [A-Za-z0-9_-]: a valid `scene`
        browser_hash=_digest(browser_secret),
        status=Status.WAITING,
        account_id=None,
        site=site_for(next_url, urlsplit(issuer()).netloc),
        user_agent=request.headers.get("User-Agent", "")[:256],
        network=network_of(request.remote_addr),
        created_at=now,
        expires_at=now + TICKET_TTL,
        appid=appid,
    )
    store().create(ticket)
    session[SESSION_KEY] = {"ticket": ticket.ticket, "secret": browser_secret, "next": next_url}
    return ticket


def code_image(app: WeChatApp, ticket: ScanTicket) -> bytes:
    """The mini-program code for the ticket, from WeChat. Raises WeChatError."""
    config = current_app.config
    with closing(client_for(app)) as wechat:
        return wechat.get_unlimited_wxacode(
            ticket.ticket,
            config.get("IDP_WECHAT_SCAN_PAGE") or DEFAULT_PAGE,
            check_path=_truthy(config.get("IDP_WECHAT_SCAN_CHECK_PATH", True)),
            env_version=config.get("IDP_WECHAT_SCAN_ENV_VERSION") or "release",
        )


def browser_ticket() -> ScanTicket | None:
    """This browser's ticket: only when its session holds the secret the ticket was bound to."""
    kept = session.get(SESSION_KEY)
    if not isinstance(kept, dict):
        return None
    ticket = store().get(str(kept.get("ticket", "")))
    secret = str(kept.get("secret", ""))
    if ticket is None or not hmac.compare_digest(ticket.browser_hash, _digest(secret)):
        return None
    return ticket


def wait_for_change(ticket: ScanTicket, seen: str, seconds: float) -> ScanTicket:
    """Long-poll: returns as soon as the status differs from `seen`, or after `seconds`. The
    caller holds no database transaction meanwhile (every read is a short one of its own)."""
    deadline = time.monotonic() + seconds
    current = ticket
    while current.status == seen and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        current = store().get(ticket.ticket) or current
    return current


@contextmanager
def poll_slot(ticket: ScanTicket, seconds: float) -> Iterator[bool | None]:
    """None: another request of this browser is already waiting (one open poll per browser).
    True: this one may wait. False: the process has its fill of waiting requests (each holds a
    worker thread), so answer at once and let the page ask again a little later."""
    if not store().claim_poll(ticket.ticket, seconds + 5):
        yield None
        return
    slots = _process_slots()
    waiting = slots.acquire(blocking=False)
    try:
        yield waiting
    finally:
        if waiting:
            slots.release()
        store().release_poll(ticket.ticket)


def finish() -> tuple[Account, str]:
    """Signs this browser in with its confirmed ticket, once. Raises NotConfirmed."""
    ticket = browser_ticket()
    if ticket is None or ticket.status != Status.CONFIRMED:
        raise NotConfirmed()
    used = store().move(ticket.ticket, (Status.CONFIRMED,), Status.USED, None)
    if used is None or used.account_id is None:
        raise NotConfirmed()
    # Merged since it confirmed? The survivor signs in. Disabled? Nobody does.
    account = resolve_account(used.account_id)
    if account is None or not account.is_active:
        raise NotConfirmed()
    next_url = str(session.get(SESSION_KEY, {}).get("next") or "")
    session.pop(SESSION_KEY, None)
    return account, next_url


def cancel() -> str:
    """The person at the browser did not recognise the account that confirmed (or gave up):
    the ticket ends, nobody signs in. Returns the `next` URL the sign-in was for."""
    ticket = browser_ticket()
    kept = session.pop(SESSION_KEY, None)
    if ticket is not None:
        # A confirmed ticket first, within the grace it has to be finished in; else unanswered.
        store().move(ticket.ticket, (Status.CONFIRMED,), Status.CANCELLED, None) or store().move(
            ticket.ticket, Status.UNANSWERED, Status.CANCELLED, None)
    return str(kept.get("next") or "") if isinstance(kept, dict) else ""


def confirming_account(ticket: ScanTicket) -> Account | None:
    """The account a confirmed ticket would sign in (the survivor, if it merged since)."""
    if ticket.status != Status.CONFIRMED or ticket.account_id is None:
        return None
    account = resolve_account(ticket.account_id)
    return account if account is not None and account.is_active else None


# --- the mini-program's side -------------------------------------------------------------------


def ticket_for_confirm_page(ticket_id: str, appid: str) -> ScanTicket:
    """What the confirm page of mini-program `appid` shows; the first look turns `waiting` into
    `scanned` so the waiting page can say "scanned, confirm on your phone". Raises UnknownTicket,
    TicketAlreadyAnswered, WrongMiniProgram."""
    _check_mini_program(store().get(ticket_id), appid)
    scanned = store().move(ticket_id, (Status.WAITING,), Status.SCANNED, None)
    ticket = scanned or store().get(ticket_id)
    _check_unanswered(ticket)
    assert ticket is not None
    return ticket


def answer(ticket_id: str, account: Account, decision: str, appid: str) -> str:
    """`confirm` binds the ticket to the caller's account; `refuse` ends it. `appid` is the
    caller's mini-program. Returns the new status. Raises UnknownTicket, TicketAlreadyAnswered,
    WrongMiniProgram, ValueError (bad decision)."""
    status = DECISIONS.get(decision)
    if status is None:
        raise ValueError(decision)
    _check_mini_program(store().get(ticket_id), appid)
    account_id = account.id if status == Status.CONFIRMED else None
    moved = store().move(ticket_id, Status.UNANSWERED, status, account_id)
    if moved is None:
        _check_unanswered(store().get(ticket_id))
        raise TicketAlreadyAnswered(Status.EXPIRED)  # it changed under us: someone else won
    return moved.status


def seconds_left(ticket: ScanTicket) -> int:
    return max(0, int(ticket.expires_at - time.time()))


def _check_unanswered(ticket: ScanTicket | None) -> None:
    if ticket is None or ticket.status == Status.EXPIRED:
        raise UnknownTicket()
    if ticket.status not in Status.UNANSWERED:
        raise TicketAlreadyAnswered(ticket.status)


def _check_mini_program(ticket: ScanTicket | None, appid: str) -> None:
    """A ticket's appid never changes, so reading it before the move is enough."""
    if ticket is None or ticket.status == Status.EXPIRED:
        raise UnknownTicket()
    if not (ticket.appid and hmac.compare_digest(ticket.appid.encode(), appid.encode())):
        raise WrongMiniProgram()


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"0", "false", "no", "off", ""}
    return bool(value)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_slots_lock = threading.Lock()


def _process_slots() -> threading.BoundedSemaphore:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with _slots_lock:
        slots: threading.BoundedSemaphore | None = app.extensions.get("idp_wechat_scan_slots")
        if slots is None:
            limit = int(app.config.get("IDP_WECHAT_SCAN_LONG_POLLS", 2))
            slots = app.extensions["idp_wechat_scan_slots"] = threading.BoundedSemaphore(limit)
    return slots
