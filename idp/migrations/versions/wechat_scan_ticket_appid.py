"""a scan ticket names the mini-program whose code shows it (issue 23 item 4)

Revision ID: 3f8a1c6e2d47
Revises: 9c4e2b7a5d18
Create Date: 2026-12-06 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3f8a1c6e2d47'
down_revision = '9c4e2b7a5d18'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('wechat_scan_ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('appid', sa.String(length=32), nullable=False,
                                      server_default=''))


def downgrade():
    with op.batch_alter_table('wechat_scan_ticket', schema=None) as batch_op:
        batch_op.drop_column('appid')
