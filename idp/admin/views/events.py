"""Event delivery: how each sink (RP push, RabbitMQ) is doing, and the deliveries that failed,
with a retry."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import ConfirmForm
from idp.events.models import DeliveryStatus, EventDelivery
from idp.events.monitoring import outbox_state
from idp.events.outbox import DeliveryNotRetryable, amqp_exchange, retry_delivery
from idp.extensions import db


@bp.get("/events")
def events() -> Any:
    failing = db.session.scalars(
        select(EventDelivery)
        .where(
            (EventDelivery.status == DeliveryStatus.DEAD)
            | ((EventDelivery.status == DeliveryStatus.PENDING)
               & EventDelivery.last_error.is_not(None))
        )
        .order_by(EventDelivery.id.desc())
        .limit(200)
    ).all()
    return render_template(
        "admin/events.html", deliveries=failing, form=ConfirmForm(),
        sinks=outbox_state(), exchange=amqp_exchange(),
    )


@bp.post("/events/<int:delivery_id>/retry")
def event_retry(delivery_id: int) -> Any:
    if ConfirmForm().validate_on_submit():
        try:
            retry_delivery(delivery_id, admin_actor())
        except DeliveryNotRetryable:
            flash(_("That delivery cannot be retried (it was delivered, or is gone)."), "error")
        else:
            flash(_("Delivery #%(id)d will be sent again now.", id=delivery_id), "info")
    return redirect(url_for("admin.events"))
