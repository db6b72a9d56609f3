"""dataloop: index of event deliveries by creation time (delivery outcomes per day and sink)

Revision ID: d6621663eee1
Revises: 5c1e2a7d9b30
Create Date: 2026-11-30 09:30:00

"""
from alembic import op


revision = 'd6621663eee1'
down_revision = '5c1e2a7d9b30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_event_delivery_created_at', 'event_delivery', ['created_at'])


def downgrade():
    op.drop_index('ix_event_delivery_created_at', table_name='event_delivery')
