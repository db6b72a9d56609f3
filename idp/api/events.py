"""What a service may learn of event delivery (`idp:events.read`): the backlog per sink."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from idp.api.blueprint import bp, requires
from idp.api.representations import iso
from idp.events.monitoring import outbox_state


@bp.get("/events/status")
@requires("idp:events.read")
def events_status() -> Any:
    return jsonify({"sinks": [
        {"sink": state.sink, "pending": state.pending, "retrying": state.retrying,
         "dead": state.dead, "oldest_pending_at": iso(state.oldest_pending_at),
         "lag_seconds": round(state.lag_seconds(), 3)}
        for state in outbox_state().values()
    ]})
