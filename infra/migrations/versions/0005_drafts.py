"""Drafts and comments inside member organisations (SPEC section 10): a member's people draft its
position on an item and comment on the draft before an approver adopts it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("negotiation_id", sa.String(length=64), nullable=False),
        sa.Column("item_key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("updated_by_id", sa.String(length=64), nullable=False),
        sa.Column("updated_by_name", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("adopted_by_id", sa.String(length=64), nullable=True),
        sa.Column("adopted_by_name", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("organisation_id", "negotiation_id", "item_key"),
    )
    op.create_table(
        "draft_comments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("negotiation_id", sa.String(length=64), nullable=False),
        sa.Column("item_key", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("person_name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("draft_comments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_draft_comments_thread",
            ["organisation_id", "negotiation_id", "item_key", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("draft_comments", schema=None) as batch_op:
        batch_op.drop_index("ix_draft_comments_thread")
    op.drop_table("draft_comments")
    op.drop_table("drafts")
