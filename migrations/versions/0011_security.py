"""identity: login counters per address and account, session generations, forced password changes,
the audit's source address and, on PostgreSQL, an audit log that refuses updates and deletes

Revision ID: 0011_security
Revises: 0008_reporting
Create Date: 2026-12-06 05:00:00

The failed-login count moves from the user row (read, then written: parallel guesses lost updates)
to counters keyed by what they limit (fleet.domain.identity), including names that are no account.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_security"
down_revision = "0008_reporting"
branch_labels = None
depends_on = None

APPEND_ONLY = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("username", sa.String(80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.Float(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("kind", "address", "username", name="pk_login_throttles"),
    )
    op.create_index("ix_login_throttles_username", "login_throttles", ["username"])
    op.create_index("ix_login_throttles_last_failure_at", "login_throttles", ["last_failure_at"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.drop_column("failed_logins")
        batch.drop_column("last_failed_login_at")
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("address", sa.String(64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("address")
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_failed_login_at", sa.DateTime(), nullable=True))
        batch.drop_column("must_change_password")
        batch.drop_column("session_generation")
    op.drop_index("ix_login_throttles_last_failure_at", "login_throttles")
    op.drop_index("ix_login_throttles_username", "login_throttles")
    op.drop_table("login_throttles")
