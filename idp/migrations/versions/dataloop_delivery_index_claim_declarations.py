"""dataloop: index of event deliveries by creation time (delivery outcomes per day and sink);
claims declared in the admin UI

Revision ID: d6621663eee1
Revises: 5e1c7a94b2d3
Create Date: 2026-11-30 09:30:00

"""
from alembic import op
import sqlalchemy as sa

import idp.models_base


revision = 'd6621663eee1'
down_revision = '5e1c7a94b2d3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_event_delivery_created_at', 'event_delivery', ['created_at'])
    op.create_table(
        'claim_declaration',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('scope', sa.String(length=32), nullable=False),
        sa.Column('writers', sa.JSON(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('created_at', idp.models_base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_claim_declaration')),
    )


def downgrade():
    op.drop_table('claim_declaration')
    op.drop_index('ix_event_delivery_created_at', table_name='event_delivery')
