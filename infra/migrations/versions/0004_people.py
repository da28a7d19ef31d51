"""People inside organisations (SPEC section 10): people with a role, their personal tokens,
dashboard sessions that belong to a person, and the person who made a webhook subscription.

Existing organisations keep their API key as their integration key. Dashboard sessions begun with
an organisation key end: the dashboard is for people, who sign in again with single sign-on or a
personal token.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index("ix_people_organisation_id", ["organisation_id"], unique=False)
        batch_op.create_index("ix_people_email", ["email"], unique=False)
        batch_op.create_index("ux_people_identity", ["issuer", "subject"], unique=True)
    op.create_table(
        "personal_tokens",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    with op.batch_alter_table("personal_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_personal_tokens_person_id", ["person_id"], unique=False)
    op.execute("DELETE FROM dashboard_sessions")
    with op.batch_alter_table("dashboard_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.String(length=64), nullable=False))
        batch_op.create_index("ix_dashboard_sessions_person_id", ["person_id"], unique=False)
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_subscriptions_person_id", ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_person_id")
        batch_op.drop_column("person_id")
    op.execute("DELETE FROM dashboard_sessions")
    with op.batch_alter_table("dashboard_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_dashboard_sessions_person_id")
        batch_op.drop_column("person_id")
    with op.batch_alter_table("personal_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_personal_tokens_person_id")
    op.drop_table("personal_tokens")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index("ux_people_identity")
        batch_op.drop_index("ix_people_email")
        batch_op.drop_index("ix_people_organisation_id")
    op.drop_table("people")
