"""wechat scan-to-sign-in tickets

Revision ID: 30f5ca884e7c
Revises: 5c1e2a7d9b30
Create Date: 2026-11-30 08:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '30f5ca884e7c'
down_revision = '5c1e2a7d9b30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('wechat_scan_ticket',
    sa.Column('ticket', sa.String(length=32), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=True),
    sa.Column('site', sa.String(length=200), nullable=False),
    sa.Column('user_agent', sa.String(length=256), nullable=False),
    sa.Column('network', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('poll_until', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('ticket', name=op.f('pk_wechat_scan_ticket'))
    )
    with op.batch_alter_table('wechat_scan_ticket', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wechat_scan_ticket_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('wechat_scan_ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wechat_scan_ticket_expires_at'))
    op.drop_table('wechat_scan_ticket')
