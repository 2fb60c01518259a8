"""rate limits and fraud rules (verify/models/abuse.py)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fraud_rule_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('rule_sid', sa.String(length=34), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_rule_changes'))
    )
    with op.batch_alter_table('fraud_rule_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_rule_changes_account_sid'), ['account_sid'], unique=False)

    op.create_table('fraud_blocks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('scope_sid', sa.String(length=34), nullable=False),
    sa.Column('rule_sid', sa.String(length=48), nullable=False),
    sa.Column('dimension', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('strikes', sa.Integer(), nullable=False),
    sa.Column('blocked_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_sid'], ['accounts.sid'], name=op.f('fk_fraud_blocks_account_sid_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_blocks')),
    sa.UniqueConstraint('account_sid', 'scope_sid', 'rule_sid', 'dimension', 'value', name=op.f('uq_fraud_blocks_account_sid_scope_sid_rule_sid_dimension_value'))
    )
    op.create_table('safe_list',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_sid'], ['accounts.sid'], name=op.f('fk_safe_list_account_sid_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_safe_list')),
    sa.UniqueConstraint('account_sid', 'value', name=op.f('uq_safe_list_account_sid_value'))
    )
    op.create_table('fraud_rules',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=True),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('channels', sa.String(length=64), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_sid'], ['accounts.sid'], name=op.f('fk_fraud_rules_account_sid_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_sid'], ['services.sid'], name=op.f('fk_fraud_rules_service_sid_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_fraud_rules'))
    )
    with op.batch_alter_table('fraud_rules', schema=None) as batch_op:
        batch_op.create_index('ix_fraud_rules_account_sid', ['account_sid', 'priority'], unique=False)

    op.create_table('rate_limits',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=False),
    sa.Column('unique_name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['service_sid'], ['services.sid'], name=op.f('fk_rate_limits_service_sid_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_rate_limits')),
    sa.UniqueConstraint('service_sid', 'unique_name', name=op.f('uq_rate_limits_service_sid_unique_name'))
    )
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limits_account_sid'), ['account_sid'], unique=False)

    op.create_table('fraud_decisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=False),
    sa.Column('verification_sid', sa.String(length=34), nullable=False),
    sa.Column('attempt_sid', sa.String(length=34), nullable=True),
    sa.Column('rule_sid', sa.String(length=48), nullable=False),
    sa.Column('rule_type', sa.String(length=32), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['verification_sid'], ['verifications.sid'], name=op.f('fk_fraud_decisions_verification_sid_verifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_decisions'))
    )
    with op.batch_alter_table('fraud_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_decisions_account_sid'), ['account_sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_fraud_decisions_verification_sid'), ['verification_sid'], unique=False)

    op.create_table('rate_limit_buckets',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('rate_limit_sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('service_sid', sa.String(length=34), nullable=False),
    sa.Column('max', sa.Integer(), nullable=False),
    sa.Column('interval', sa.Integer(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rate_limit_sid'], ['rate_limits.sid'], name=op.f('fk_rate_limit_buckets_rate_limit_sid_rate_limits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_rate_limit_buckets')),
    sa.UniqueConstraint('rate_limit_sid', 'interval', name=op.f('uq_rate_limit_buckets_rate_limit_sid_interval'))
    )
    with op.batch_alter_table('rate_limit_buckets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_buckets_rate_limit_sid'), ['rate_limit_sid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_limit_buckets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limit_buckets_rate_limit_sid'))

    op.drop_table('rate_limit_buckets')
    with op.batch_alter_table('fraud_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fraud_decisions_verification_sid'))
        batch_op.drop_index(batch_op.f('ix_fraud_decisions_account_sid'))

    op.drop_table('fraud_decisions')
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limits_account_sid'))

    op.drop_table('rate_limits')
    with op.batch_alter_table('fraud_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_fraud_rules_account_sid')

    op.drop_table('fraud_rules')
    op.drop_table('safe_list')
    op.drop_table('fraud_blocks')
    with op.batch_alter_table('fraud_rule_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fraud_rule_changes_account_sid'))

    op.drop_table('fraud_rule_changes')
