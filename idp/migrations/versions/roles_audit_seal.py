"""tamper-evident audit trail (issue 27 item 4): a keyed MAC chain per day over audit_event

Revision ID: a27e0b1c5d03
Revises: a27e0b1c5d02
Create Date: 2026-12-06 10:25:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a27e0b1c5d03'
down_revision = 'a27e0b1c5d02'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_seal',
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('prev', sa.String(length=64), nullable=False),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('seq'),
        sa.UniqueConstraint('event_id'),
    )
    with op.batch_alter_table('audit_seal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_seal_day'), ['day'], unique=False)


def downgrade():
    op.drop_table('audit_seal')
