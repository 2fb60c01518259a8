"""providers and receipts (verify/models/delivery.py)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('providers',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('friendly_name', sa.String(length=64), nullable=False),
    sa.Column('channels', sa.String(length=64), nullable=False),
    sa.Column('countries', sa.String(length=1024), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('sealed_credentials', sa.LargeBinary(), nullable=False),
    sa.Column('credential_keys', sa.String(length=256), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_sid'], ['accounts.sid'], name=op.f('fk_providers_account_sid_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_providers'))
    )
    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.create_index('ix_providers_account_priority', ['account_sid', 'priority'], unique=False)

    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fallback_channels', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('channel_timeout', sa.Integer(), server_default=sa.text('60'), nullable=False))

    with op.batch_alter_table('send_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_sid', sa.String(length=34), nullable=True))
        batch_op.add_column(sa.Column('provider_message_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('raw_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('tries', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('replaces_sid', sa.String(length=34), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_send_attempts_provider_message', ['provider_sid', 'provider_message_id'], unique=False)
        batch_op.create_index('uq_send_attempts_replaces_sid', ['replaces_sid'], unique=True)

    op.create_table('delivery_receipts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('provider_sid', sa.String(length=34), nullable=False),
    sa.Column('provider_message_id', sa.String(length=128), nullable=False),
    sa.Column('attempt_sid', sa.String(length=34), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=True),
    sa.Column('raw_code', sa.String(length=64), nullable=True),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_sid'], ['send_attempts.sid'], name=op.f('fk_delivery_receipts_attempt_sid_send_attempts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_receipts'))
    )
    with op.batch_alter_table('delivery_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_receipts_attempt_sid'), ['attempt_sid'], unique=False)
        batch_op.create_index('uq_delivery_receipts_step', ['provider_sid', 'provider_message_id', 'status'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('delivery_receipts', schema=None) as batch_op:
        batch_op.drop_index('uq_delivery_receipts_step')
        batch_op.drop_index(batch_op.f('ix_delivery_receipts_attempt_sid'))

    op.drop_table('delivery_receipts')

    with op.batch_alter_table('send_attempts', schema=None) as batch_op:
        batch_op.drop_index('uq_send_attempts_replaces_sid')
        batch_op.drop_index('ix_send_attempts_provider_message')
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('replaces_sid')
        batch_op.drop_column('retry_at')
        batch_op.drop_column('tries')
        batch_op.drop_column('raw_code')
        batch_op.drop_column('provider_message_id')
        batch_op.drop_column('provider_sid')

    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_column('channel_timeout')
        batch_op.drop_column('fallback_channels')

    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.drop_index('ix_providers_account_priority')

    op.drop_table('providers')
