"""four-eyes proposals (issue 27 item 2): a merge, undo or move waiting for a second admin

Revision ID: a27e0b1c5d02
Revises: a27e0b1c5d01
Create Date: 2026-12-06 10:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a27e0b1c5d02'
down_revision = 'a27e0b1c5d01'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'admin_proposal',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('subject', sa.JSON(), nullable=False),
        sa.Column('reason', sa.String(length=255), nullable=False),
        sa.Column('proposed_by', sa.String(length=36), nullable=False),
        sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('decided_by', sa.String(length=36), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('outcome', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('admin_proposal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_proposal_proposed_by'), ['proposed_by'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_admin_proposal_status'), ['status'], unique=False)


def downgrade():
    op.drop_table('admin_proposal')
