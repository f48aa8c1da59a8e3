"""when each guild membership was last confirmed, and whether it ended, so members who left can be found

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 17:30:00
"""
from alembic import op
import sqlalchemy as sa


import core.db.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows start unchecked (NULL): the first sweeps ask Discord about them, oldest first.
    with op.batch_alter_table('guild_memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checked_at', core.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('left_at', core.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_guild_memberships_checked_at'), ['checked_at'], unique=False)


def downgrade() -> None:
    # 0003 has no notion of a membership that ended: a departed member's row would read as a current
    # membership again (shown on the boards, counted among their servers). Forget those that keep
    # no choice to be hidden, as 0003 itself forgets a guild's on leaving; hidden choices stay.
    op.execute("DELETE FROM guild_memberships WHERE left_at IS NOT NULL AND (visible IS NULL OR visible)")
    with op.batch_alter_table('guild_memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guild_memberships_checked_at'))
        batch_op.drop_column('left_at')
        batch_op.drop_column('checked_at')
