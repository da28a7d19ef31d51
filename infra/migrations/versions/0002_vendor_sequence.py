"""The vendor's own counter: ``events.vendor_sequence`` (its feed pages by it) and
``negotiations.vendor_sequence`` / ``vendor_updated_at`` (its listing), filled in for the events
already projected.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from streams.core.state import VENDOR_VISIBLE

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vendor_sequence", sa.Integer(), nullable=True))
        batch_op.create_index("ix_events_vendor_sequence", ["negotiation_id", "vendor_sequence"], unique=False)
    with op.batch_alter_table("negotiations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vendor_sequence", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("vendor_updated_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("negotiations", schema=None) as batch_op:
        batch_op.alter_column("vendor_sequence", server_default=None)
    _number_the_projected_events()


def _number_the_projected_events() -> None:
    """Number the events the vendor may see, per negotiation, in the order of their sequence."""
    bind = op.get_bind()
    events = sa.table(
        "events",
        sa.column("negotiation_id", sa.String),
        sa.column("sequence", sa.Integer),
        sa.column("type", sa.String),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("vendor_sequence", sa.Integer),
    )
    negotiations = sa.table(
        "negotiations",
        sa.column("id", sa.String),
        sa.column("vendor_sequence", sa.Integer),
        sa.column("vendor_updated_at", sa.DateTime(timezone=True)),
    )
    counters: dict[str, int] = defaultdict(int)
    latest: dict[str, object] = {}
    numbered = []
    rows = bind.execute(
        sa.select(events.c.negotiation_id, events.c.sequence, events.c.occurred_at)
        .where(events.c.type.in_(sorted(VENDOR_VISIBLE)))
        .order_by(events.c.negotiation_id, events.c.sequence)
    )
    for negotiation_id, sequence, occurred_at in rows:
        counters[negotiation_id] += 1
        latest[negotiation_id] = occurred_at
        numbered.append({"n": negotiation_id, "s": sequence, "v": counters[negotiation_id]})
    if numbered:
        bind.execute(
            events.update()
            .where(events.c.negotiation_id == sa.bindparam("n"), events.c.sequence == sa.bindparam("s"))
            .values(vendor_sequence=sa.bindparam("v")),
            numbered,
        )
    if counters:
        bind.execute(
            negotiations.update()
            .where(negotiations.c.id == sa.bindparam("n"))
            .values(vendor_sequence=sa.bindparam("v"), vendor_updated_at=sa.bindparam("t")),
            [{"n": n, "v": v, "t": latest[n]} for n, v in counters.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("negotiations", schema=None) as batch_op:
        batch_op.drop_column("vendor_updated_at")
        batch_op.drop_column("vendor_sequence")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_vendor_sequence")
        batch_op.drop_column("vendor_sequence")
