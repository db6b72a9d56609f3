"""refresh_token: each successor names its predecessor; the kept-answer index goes

A rotation dropped the family's older kept answer through a partial index on the answer column;
an index whose condition reads a column a rotation changes makes every rotation's UPDATE write
a new entry in every index of the table (no heap-only update). The successor now names its
predecessor, whose answer its rotation drops by primary key, and no index reads the columns a
rotation changes. Rows already issued: each live token of a family that keeps an answer (on at
most one row, its latest rotation's) is given that row as its predecessor; the others are not
written.

Revision ID: d7e2a9c4f1b3
Revises: c31a7e9d2b58
Create Date: 2026-12-07 02:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd7e2a9c4f1b3'
down_revision = 'c31a7e9d2b58'
branch_labels = None
depends_on = None

WHERE = sa.text("successor_response_encrypted IS NOT NULL")


def upgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('predecessor_digest', sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE refresh_token SET predecessor_digest = ("
        " SELECT kept.token_digest FROM refresh_token AS kept"
        " WHERE kept.family = refresh_token.family"
        " AND kept.successor_response_encrypted IS NOT NULL"
        " AND kept.token_digest <> refresh_token.token_digest"
        " ORDER BY kept.rotated_at DESC LIMIT 1)"
        " WHERE rotated_at IS NULL AND revoked_at IS NULL AND EXISTS ("
        " SELECT 1 FROM refresh_token AS kept WHERE kept.family = refresh_token.family"
        " AND kept.successor_response_encrypted IS NOT NULL"
        " AND kept.token_digest <> refresh_token.token_digest)"
    )
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_index('ix_refresh_token_kept_answer',
                            sqlite_where=WHERE, postgresql_where=WHERE)


def downgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.create_index('ix_refresh_token_kept_answer', ['family'], unique=False,
                              sqlite_where=WHERE, postgresql_where=WHERE)
        batch_op.drop_column('predecessor_digest')
