"""webhooks (verify/models/webhooks.py)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_callback', sa.String(length=2048), nullable=True))

    op.create_table('webhook_endpoints',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=False),
    sa.Column('friendly_name', sa.String(length=64), nullable=False),
    sa.Column('event_types', sa.String(length=1024), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.String(length=8), nullable=False),
    sa.Column('signature_mode', sa.String(length=16), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['service_sid'], ['services.sid'], name=op.f('fk_webhook_endpoints_service_sid_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_webhook_endpoints'))
    )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_endpoints_account_sid'), ['account_sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_endpoints_service_sid'), ['service_sid'], unique=False)

    op.create_table('webhook_secrets',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('owner_sid', sa.String(length=34), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_webhook_secrets'))
    )
    with op.batch_alter_table('webhook_secrets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_secrets_owner_sid'), ['owner_sid'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', BIGINT_ID, autoincrement=True, nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=True),
    sa.Column('endpoint_sid', sa.String(length=34), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('event_sid', sa.String(length=34), nullable=False),
    sa.Column('event_type', sa.String(length=48), nullable=False),
    sa.Column('verification_sid', sa.String(length=34), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_sid'], ['webhook_endpoints.sid'], name=op.f('fk_webhook_deliveries_endpoint_sid_webhook_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('event_sid', 'endpoint_sid', name=op.f('uq_webhook_deliveries_event_sid_endpoint_sid')),
    sa.UniqueConstraint('sid', name=op.f('uq_webhook_deliveries_sid'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_account_sid'), ['account_sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_verification_sid'), ['verification_sid'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_status_next', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_endpoint_status', ['endpoint_sid', 'status'], unique=False)

    op.create_table('webhook_attempts',
    sa.Column('id', BIGINT_ID, autoincrement=True, nullable=False),
    sa.Column('delivery_sid', sa.String(length=34), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['delivery_sid'], ['webhook_deliveries.sid'], name=op.f('fk_webhook_attempts_delivery_sid_webhook_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_attempts_delivery_sid'), ['delivery_sid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_attempts_delivery_sid'))
    op.drop_table('webhook_attempts')

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_endpoint_status')
        batch_op.drop_index('ix_webhook_deliveries_status_next')
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_verification_sid'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_account_sid'))
    op.drop_table('webhook_deliveries')

    with op.batch_alter_table('webhook_secrets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_secrets_owner_sid'))
    op.drop_table('webhook_secrets')

    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_endpoints_service_sid'))
        batch_op.drop_index(batch_op.f('ix_webhook_endpoints_account_sid'))
    op.drop_table('webhook_endpoints')

    # Not a batch: SQLite (>= 3.35) drops the column in place, where a batch would rebuild the table
    # and its partial unique index.
    op.drop_column('verifications', 'status_callback')
