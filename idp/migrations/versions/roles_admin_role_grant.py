"""admin roles (issue 27): one row per (account, role); every existing admin becomes `security`

Revision ID: a27e0b1c5d01
Revises: e7a41c2d9f58
Create Date: 2026-12-06 09:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a27e0b1c5d01'
down_revision = 'e7a41c2d9f58'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'admin_role_grant',
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('granted_by', sa.String(length=80), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('account_id', 'role'),
    )
    # The admins of before roles could do everything; `security` is the role that can grant the
    # others, so nobody is locked out and each operator hands out the rest deliberately.
    op.execute(sa.text(
        "INSERT INTO admin_role_grant (account_id, role, granted_by, granted_at) "
        "SELECT id, 'security', 'system:migration', CURRENT_TIMESTAMP FROM account "
        "WHERE is_admin = :yes"
    ).bindparams(yes=True))


def downgrade():
    op.drop_table('admin_role_grant')
