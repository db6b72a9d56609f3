"""claim_release: which claims each client received about an account, and when (issue 28 item 5)

Revision ID: b28e5c1a7f04
Revises: a27e0b1c5d03
Create Date: 2026-12-06 12:20:00

"""
from alembic import op
import sqlalchemy as sa

import idp.models_base


# revision identifiers, used by Alembic.
revision = 'b28e5c1a7f04'
down_revision = 'a27e0b1c5d03'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'claim_release',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('claims', sa.JSON(), nullable=False),
        sa.Column('first_released_at', idp.models_base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_released_at', idp.models_base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'],
                                name=op.f('fk_claim_release_account_id_account')),
        sa.ForeignKeyConstraint(['client_id'], ['oauth_client.client_id'],
                                name=op.f('fk_claim_release_client_id_oauth_client')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_release')),
    )
    with op.batch_alter_table('claim_release', schema=None) as batch_op:
        batch_op.create_index('uq_claim_release', ['account_id', 'client_id', 'scope'],
                              unique=True)
        batch_op.create_index(batch_op.f('ix_claim_release_client_id'), ['client_id'],
                              unique=False)


def downgrade():
    op.drop_table('claim_release')
