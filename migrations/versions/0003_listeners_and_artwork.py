"""global listeners on artists, cover look-ups on albums

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 05:00:00
"""
from alembic import op
import sqlalchemy as sa


import core.db.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lastfm_listeners', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('listeners_checked_at', core.db.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('albums', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_checked_at', core.db.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('albums', schema=None) as batch_op:
        batch_op.drop_column('image_checked_at')
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.drop_column('listeners_checked_at')
        batch_op.drop_column('lastfm_listeners')
