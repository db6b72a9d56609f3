"""sms: codes bound to the browser that asked; acceptance of the terms

Revision ID: c41f7a2e9b3d
Revises: 30f5ca884e7c
Create Date: 2026-11-30 08:40:00

"""
from alembic import op
import sqlalchemy as sa

import idp.models_base


revision = 'c41f7a2e9b3d'
down_revision = '30f5ca884e7c'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sms_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('browser_digest', sa.String(length=64), nullable=True))
    # Codes were stored as plain SHA-256 until now; keyed digests cannot match them. Live codes
    # (5 minutes) die: the user asks for another one.
    op.execute("UPDATE sms_code SET consumed_at = created_at WHERE consumed_at IS NULL")

    op.create_table('terms_acceptance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('accepted_at', idp.models_base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_terms_acceptance_account_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_terms_acceptance'))
    )
    with op.batch_alter_table('terms_acceptance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_terms_acceptance_account_id'), ['account_id'], unique=False)


def downgrade():
    with op.batch_alter_table('terms_acceptance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_terms_acceptance_account_id'))
    op.drop_table('terms_acceptance')
    with op.batch_alter_table('sms_code', schema=None) as batch_op:
        batch_op.drop_column('browser_digest')
