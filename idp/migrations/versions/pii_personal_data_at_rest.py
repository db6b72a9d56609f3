"""personal data at rest (issue 28): identity.value_sealed holds the encrypted value of phones,
emails and unionids; identity.value (lookups, the uniqueness rule) their blind index

Adding a nullable column is instant; the rows are rewritten afterwards, in batches, by
`idp data encrypt` while the IdP serves (rows not yet rewritten are still found).
Downgrading loses the encrypted values of rows written since: run it only before any.

Revision ID: b28d4e1f7a2c
Revises: b28e5c1a7f04
Create Date: 2026-12-06 12:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b28d4e1f7a2c'
down_revision = 'b28e5c1a7f04'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('value_sealed', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.drop_column('value_sealed')
