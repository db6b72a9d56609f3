"""event deliveries: failing_since (a delivery dies after a time ceiling, not a count of tries)
and the index of each account's line per receiver (the order check)

Revision ID: e7a41c2d9f58
Revises: 3f8a1c6e2d47
Create Date: 2026-12-06 09:10:00

"""
from alembic import op
import sqlalchemy as sa

import idp.models_base


revision = 'e7a41c2d9f58'
down_revision = '3f8a1c6e2d47'
branch_labels = None
depends_on = None

UNDELIVERED = "status IN ('pending', 'dead')"


def upgrade():
    with op.batch_alter_table('event_delivery', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('failing_since', idp.models_base.UTCDateTime(), nullable=True)
        )
    op.create_index(
        'ix_event_delivery_line', 'event_delivery', ['subject', 'sink', 'client_id', 'id'],
        sqlite_where=sa.text(UNDELIVERED), postgresql_where=sa.text(UNDELIVERED),
    )


def downgrade():
    op.drop_index('ix_event_delivery_line', table_name='event_delivery')
    with op.batch_alter_table('event_delivery', schema=None) as batch_op:
        batch_op.drop_column('failing_since')
