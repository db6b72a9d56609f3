"""index the authorization codes' nonce (the replay check of every authorization request)

Revision ID: 5d3c9a1e7b24
Revises: d6621663eee1
Create Date: 2026-11-30 08:50:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5d3c9a1e7b24'
down_revision = 'd6621663eee1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.create_index('ix_authorization_code_nonce', ['nonce'], unique=False,
                              postgresql_using='hash')


def downgrade():
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.drop_index('ix_authorization_code_nonce', postgresql_using='hash')
