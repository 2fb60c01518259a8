"""delivery_receipts.source: whether the provider posted a receipt or answered a lookup

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery_receipts', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('source', sa.String(length=8), server_default='callback', nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('delivery_receipts', schema=None) as batch_op:
        batch_op.drop_column('source')
