"""lifecycle events: per-client event types, delivery sinks and subjects

Revision ID: 5e1c7a94b2d3
Revises: c3e7a1b9d2f4
Create Date: 2026-11-30 08:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1c7a94b2d3'
down_revision = 'c3e7a1b9d2f4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_types', sa.JSON(), nullable=True))
    with op.batch_alter_table('event_delivery', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('sink', sa.String(length=16), server_default='push', nullable=False)
        )
        batch_op.add_column(sa.Column('subject', sa.String(length=64), nullable=True))
        batch_op.alter_column('client_id', existing_type=sa.String(length=64), nullable=True)
        batch_op.create_index(batch_op.f('ix_event_delivery_subject'), ['subject'], unique=False)


def downgrade():
    op.execute("DELETE FROM event_delivery WHERE client_id IS NULL")
    with op.batch_alter_table('event_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_delivery_subject'))
        batch_op.alter_column('client_id', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('subject')
        batch_op.drop_column('sink')
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('event_types')
