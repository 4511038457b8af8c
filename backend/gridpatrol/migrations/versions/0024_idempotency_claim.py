"""idempotency: a key claimed by a lock, its row written once with the answer

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-27 21:30:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

# A key was claimed by inserting its row and answered by updating it: every write from the field left
# a dead row behind, and autovacuum went over idempotency_keys again and again (at city scale, a table of
# hundreds of MB), its WAL flushes holding every commit for up to ~60 ms (docs/performance.md,
# fifteenth round). Now a key answered before is read and replayed at once; a new key is claimed by a
# transaction-level lock on (user, key), waited for at most `wait` (a request with the same key still
# in flight: 409), then its row is read again with a snapshot taken after the lock (each query of a
# volatile function sees what committed before it): a row answered while we waited is replayed. The
# row is inserted once, with the answer, at the end of the request (core/idempotency.py). Two-integer
# advisory locks: no other lock of the app uses that form.
CLAIM = """
CREATE FUNCTION idempotency_claim(p_user integer, p_key text, p_wait text)
RETURNS TABLE (scope text, request_hash text, status_code integer, response jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  own text := current_setting('lock_timeout');
BEGIN
  -- a key answered before: replayed at once (repeats of one key do not queue on its lock)
  RETURN QUERY SELECT k.scope::text, k.request_hash::text, k.status_code, k.response
               FROM idempotency_keys k WHERE k.user_id = p_user AND k.key = p_key;
  IF FOUND THEN
    RETURN;
  END IF;
  PERFORM set_config('lock_timeout', p_wait, true);
  PERFORM pg_advisory_xact_lock(p_user, hashtext(p_key));
  PERFORM set_config('lock_timeout', own, true);
  RETURN QUERY SELECT k.scope::text, k.request_hash::text, k.status_code, k.response
               FROM idempotency_keys k WHERE k.user_id = p_user AND k.key = p_key;
END
$$
"""


def upgrade():
    op.execute(CLAIM)


def downgrade():
    op.execute("DROP FUNCTION idempotency_claim(integer, text, text)")
