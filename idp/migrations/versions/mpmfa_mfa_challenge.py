"""the mini-program's pending second-factor challenges (mfa_token)

Revision ID: 7b2e4c9d1a36
Revises: 5d3c9a1e7b24
Create Date: 2026-11-30 12:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7b2e4c9d1a36'
down_revision = '5d3c9a1e7b24'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mfa_challenge',
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('amr', sa.JSON(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_digest', name=op.f('pk_mfa_challenge'))
    )
    with op.batch_alter_table('mfa_challenge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mfa_challenge_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('mfa_challenge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mfa_challenge_expires_at'))
    op.drop_table('mfa_challenge')
