"""refresh_token: a partial index on the family's rows that keep an answer

Each rotation keeps its answer on the rotated row and drops the family's older ones; without
this index that UPDATE read every row of the family (a long-lived sign-in rotates hourly for a
month: hundreds of rows per refresh). The index holds only rows with a kept answer.

Revision ID: c31a7e9d2b58
Revises: b28d4e1f7a2c
Create Date: 2026-12-06 18:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c31a7e9d2b58'
down_revision = 'b28d4e1f7a2c'
branch_labels = None
depends_on = None

WHERE = sa.text("successor_response_encrypted IS NOT NULL")


def upgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.create_index('ix_refresh_token_kept_answer', ['family'], unique=False,
                              sqlite_where=WHERE, postgresql_where=WHERE)


def downgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_index('ix_refresh_token_kept_answer',
                            sqlite_where=WHERE, postgresql_where=WHERE)
