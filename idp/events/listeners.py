"""The event outbox listens to the engine: at start-up it registers with `idp.identity.hooks`
what it queues when an account event happens, a profile changes, or a session ends (back-channel
logout). The engine then never imports `idp.events`; every row is still queued in the engine's
own transaction, so a change and its events land together or not at all."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from idp.events.backchannel_logout import queue_client_logout, queue_logout_tokens
from idp.events.outbox import emit, emit_profile_update
from idp.extensions import db
from idp.identity.hooks import hooks_of
from idp.oidc.models import Client


def init_app(app: Flask) -> None:
    hooks = hooks_of(app)
    hooks.account_event.append(emit)
    hooks.profile_updated.append(emit_profile_update)
    hooks.session_ended.append(tell_relying_parties)
    hooks.client_signed_out.append(tell_client)


def tell_relying_parties(account_id: str, session_id: str, now: datetime,  # noqa: ARG001
                         revoke_tokens: bool) -> None:  # noqa: ARG001 - the hook's signature
    """Back-Channel Logout 1.0 §2.5: the clients that got tokens in the session hear of its end."""
    queue_logout_tokens(session_id, account_id)


def tell_client(client_id: str, account_id: str, session_id: str) -> bool:
    client = db.session.get(Client, client_id)
    return client is not None and queue_client_logout(client, account_id, session_id)
