"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('friendly_name', sa.String(length=64), nullable=False),
    sa.Column('auth_token_digest', sa.LargeBinary(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_accounts'))
    )
    op.create_table('destination_failures',
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('destination', sa.String(length=320), nullable=False),
    sa.Column('consecutive', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_sid', 'destination', name=op.f('pk_destination_failures'))
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=True),
    sa.Column('type', sa.String(length=48), nullable=False),
    sa.Column('subject_sid', sa.String(length=34), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('sid', name=op.f('uq_events_sid'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_account_sid'), ['account_sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_subject_sid'), ['subject_sid'], unique=False)
        batch_op.create_index('ix_events_unpublished', ['published_at', 'id'], unique=False)

    op.create_table('api_keys',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('friendly_name', sa.String(length=64), nullable=False),
    sa.Column('secret_digest', sa.LargeBinary(length=32), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_sid'], ['accounts.sid'], name=op.f('fk_api_keys_account_sid_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_api_keys'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_account_sid'), ['account_sid'], unique=False)

    op.create_table('services',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('friendly_name', sa.String(length=64), nullable=False),
    sa.Column('code_length', sa.Integer(), nullable=False),
    sa.Column('lookup_enabled', sa.Boolean(), nullable=False),
    sa.Column('skip_sms_to_landlines', sa.Boolean(), nullable=False),
    sa.Column('dtmf_input_required', sa.Boolean(), nullable=False),
    sa.Column('tts_name', sa.String(length=64), nullable=True),
    sa.Column('psd2_enabled', sa.Boolean(), nullable=False),
    sa.Column('do_not_share_warning_enabled', sa.Boolean(), nullable=False),
    sa.Column('custom_code_enabled', sa.Boolean(), nullable=False),
    sa.Column('manual_approval_enabled', sa.Boolean(), nullable=False),
    sa.Column('code_ttl', sa.Integer(), nullable=False),
    sa.Column('max_check_attempts', sa.Integer(), nullable=False),
    sa.Column('max_send_attempts', sa.Integer(), nullable=False),
    sa.Column('channels', sa.String(length=64), nullable=False),
    sa.Column('default_locale', sa.String(length=16), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_sid'], ['accounts.sid'], name=op.f('fk_services_account_sid_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_services'))
    )
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_services_account_sid'), ['account_sid'], unique=False)

    op.create_table('test_numbers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=False),
    sa.Column('destination', sa.String(length=320), nullable=False),
    sa.Column('sealed_code', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['service_sid'], ['services.sid'], name=op.f('fk_test_numbers_service_sid_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_numbers')),
    sa.UniqueConstraint('service_sid', 'destination', name=op.f('uq_test_numbers_service_sid_destination'))
    )
    op.create_table('verifications',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=False),
    sa.Column('destination', sa.String(length=320), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('code_hash', sa.String(length=128), nullable=False),
    sa.Column('sealed_code', sa.LargeBinary(), nullable=False),
    sa.Column('check_attempts', sa.Integer(), nullable=False),
    sa.Column('send_attempts', sa.Integer(), nullable=False),
    sa.Column('is_test', sa.Boolean(), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('custom_friendly_name', sa.String(length=64), nullable=True),
    sa.Column('amount', sa.String(length=64), nullable=True),
    sa.Column('payee', sa.String(length=64), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_sid'], ['accounts.sid'], name=op.f('fk_verifications_account_sid_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_sid'], ['services.sid'], name=op.f('fk_verifications_service_sid_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_verifications'))
    )
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.create_index('ix_verifications_account_destination', ['account_sid', 'destination'], unique=False)
        batch_op.create_index('ix_verifications_pending_expiry', ['status', 'expires_at'], unique=False)
        batch_op.create_index('uq_verifications_one_pending', ['service_sid', 'destination'], unique=True, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))

    op.create_table('check_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('verification_sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['verification_sid'], ['verifications.sid'], name=op.f('fk_check_attempts_verification_sid_verifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_attempts'))
    )
    with op.batch_alter_table('check_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_check_attempts_verification_sid'), ['verification_sid'], unique=False)

    op.create_table('send_attempts',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('verification_sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('reason_code', sa.String(length=64), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['verification_sid'], ['verifications.sid'], name=op.f('fk_send_attempts_verification_sid_verifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_send_attempts'))
    )
    with op.batch_alter_table('send_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_send_attempts_account_sid'), ['account_sid'], unique=False)
        batch_op.create_index('ix_send_attempts_status_created', ['status', 'date_created'], unique=False)
        batch_op.create_index(batch_op.f('ix_send_attempts_verification_sid'), ['verification_sid'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('send_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_send_attempts_verification_sid'))
        batch_op.drop_index('ix_send_attempts_status_created')
        batch_op.drop_index(batch_op.f('ix_send_attempts_account_sid'))

    op.drop_table('send_attempts')
    with op.batch_alter_table('check_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_attempts_verification_sid'))

    op.drop_table('check_attempts')
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.drop_index('uq_verifications_one_pending', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index('ix_verifications_pending_expiry')
        batch_op.drop_index('ix_verifications_account_destination')

    op.drop_table('verifications')
    op.drop_table('test_numbers')
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_services_account_sid'))

    op.drop_table('services')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_account_sid'))

    op.drop_table('api_keys')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_unpublished')
        batch_op.drop_index(batch_op.f('ix_events_subject_sid'))
        batch_op.drop_index(batch_op.f('ix_events_account_sid'))

    op.drop_table('events')
    op.drop_table('destination_failures')
    op.drop_table('accounts')
