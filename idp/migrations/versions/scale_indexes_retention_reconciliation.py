"""scale: indexes measured at 1M accounts, reconciliation runs, usage snapshots, scheduled jobs

Revision ID: 5c1e2a7d9b30
Revises: 0a839a34d09d
Create Date: 2026-11-30 09:00:00

"""
from alembic import op
import sqlalchemy as sa

import idp.models_base


revision = '5c1e2a7d9b30'
down_revision = '0a839a34d09d'
branch_labels = None
depends_on = None

NAME_CLAIMS = sa.text("name IN ('name', 'nickname')")


def upgrade():
    op.create_index(op.f('ix_account_created_at'), 'account', ['created_at'])
    op.create_index(op.f('ix_merge_record_created_at'), 'merge_record', ['created_at'])
    op.drop_index(op.f('ix_audit_event_account_id'), table_name='audit_event')
    op.create_index('ix_audit_event_account_id_id', 'audit_event', ['account_id', 'id'])
    op.create_index(
        'ix_profile_claim_name_prefix', 'profile_claim',
        [sa.func.lower(sa.column('value')).label('lower_value')],
        postgresql_ops={'lower_value': 'text_pattern_ops'},
        postgresql_where=NAME_CLAIMS, sqlite_where=NAME_CLAIMS,
    )
    if op.get_bind().dialect.name == 'postgresql':
        # A trusted extension (PostgreSQL 13+): the database's owner may create it.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.create_index(
            'ix_profile_claim_name_trigram', 'profile_claim',
            [sa.func.lower(sa.column('value')).label('lower_value')],
            postgresql_using='gin', postgresql_ops={'lower_value': 'gin_trgm_ops'},
            postgresql_where=NAME_CLAIMS,
        )
    op.create_index('ix_refresh_token_expires_at', 'refresh_token', ['expires_at'])
    op.create_index(op.f('ix_authorization_code_expires_at'), 'authorization_code',
                    ['expires_at'])
    op.create_index(op.f('ix_login_session_expires_at'), 'login_session', ['expires_at'])
    op.create_index(op.f('ix_login_session_ended_at'), 'login_session', ['ended_at'])
    op.create_index(op.f('ix_sms_code_expires_at'), 'sms_code', ['expires_at'])
    op.drop_index(op.f('ix_event_delivery_next_attempt_at'), table_name='event_delivery')
    pending = sa.text("status = 'pending'")
    delivered = sa.text("status = 'delivered'")
    op.create_index('ix_event_delivery_due', 'event_delivery', ['next_attempt_at', 'id'],
                    postgresql_where=pending, sqlite_where=pending)
    op.create_index('ix_event_delivery_delivered_at', 'event_delivery', ['delivered_at'],
                    postgresql_where=delivered, sqlite_where=delivered)

    op.create_table(
        'reconciliation_run',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('started_at', idp.models_base.UTCDateTime(), nullable=False),
        sa.Column('finished_at', idp.models_base.UTCDateTime(), nullable=True),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_run')),
    )
    op.create_index(op.f('ix_reconciliation_run_started_at'), 'reconciliation_run',
                    ['started_at'])
    op.create_table(
        'reconciliation_finding',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=False),
        sa.Column('value', sa.String(length=255), nullable=True),
        sa.Column('account_ids', sa.JSON(), nullable=False),
        sa.Column('verified_on', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['reconciliation_run.id'],
                                name=op.f('fk_reconciliation_finding_run_id_reconciliation_run'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_finding')),
    )
    op.create_index('ix_reconciliation_finding_page', 'reconciliation_finding', ['run_id', 'id'])
    op.create_index('ix_reconciliation_finding_value', 'reconciliation_finding',
                    ['run_id', 'reason', 'value'])
    op.create_table(
        'usage_snapshot',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('computed_at', idp.models_base.UTCDateTime(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_usage_snapshot')),
    )
    op.create_table(
        'scheduled_job',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('leased_until', idp.models_base.UTCDateTime(), nullable=True),
        sa.Column('last_started_at', idp.models_base.UTCDateTime(), nullable=True),
        sa.Column('last_finished_at', idp.models_base.UTCDateTime(), nullable=True),
        sa.Column('last_outcome', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduled_job')),
    )


def downgrade():
    op.drop_table('scheduled_job')
    op.drop_table('usage_snapshot')
    op.drop_index('ix_reconciliation_finding_value', table_name='reconciliation_finding')
    op.drop_index('ix_reconciliation_finding_page', table_name='reconciliation_finding')
    op.drop_table('reconciliation_finding')
    op.drop_index(op.f('ix_reconciliation_run_started_at'), table_name='reconciliation_run')
    op.drop_table('reconciliation_run')
    op.drop_index('ix_event_delivery_delivered_at', table_name='event_delivery')
    op.drop_index('ix_event_delivery_due', table_name='event_delivery')
    op.create_index(op.f('ix_event_delivery_next_attempt_at'), 'event_delivery',
                    ['next_attempt_at'])
    op.drop_index(op.f('ix_sms_code_expires_at'), table_name='sms_code')
    op.drop_index(op.f('ix_login_session_ended_at'), table_name='login_session')
    op.drop_index(op.f('ix_login_session_expires_at'), table_name='login_session')
    op.drop_index(op.f('ix_authorization_code_expires_at'), table_name='authorization_code')
    op.drop_index('ix_refresh_token_expires_at', table_name='refresh_token')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_profile_claim_name_trigram', table_name='profile_claim')
    op.drop_index('ix_profile_claim_name_prefix', table_name='profile_claim')
    op.drop_index('ix_audit_event_account_id_id', table_name='audit_event')
    op.create_index(op.f('ix_audit_event_account_id'), 'audit_event', ['account_id'])
    op.drop_index(op.f('ix_merge_record_created_at'), table_name='merge_record')
    op.drop_index(op.f('ix_account_created_at'), table_name='account')
