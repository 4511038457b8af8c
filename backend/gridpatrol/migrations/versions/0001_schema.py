"""schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 03:40:20.070799

"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


EVENT_HASH = """
CREATE FUNCTION case_event_hash(e case_events, prev text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(concat_ws('|', coalesce(prev, ''), e.case_id, e.seq,
      to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), coalesce(e.actor_id::text, ''),
      coalesce(e.team_id::text, ''), e.action, coalesce(e.from_status, ''), e.to_status, e.payload::text,
      coalesce(to_char(e.client_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '')), 'UTF8')), 'hex')
$$;

-- seq and hash are the database's to give: one chain per case, never gapped or reordered
CREATE FUNCTION case_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  last record;
BEGIN
  SELECT seq, hash INTO last FROM case_events WHERE case_id = NEW.case_id ORDER BY seq DESC LIMIT 1;
  NEW.seq := coalesce(last.seq, 0) + 1;
  NEW.prev_hash := last.hash;
  NEW.hash := case_event_hash(NEW, last.hash);
  RETURN NEW;
END $$;

CREATE FUNCTION case_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'case_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER case_events_chain BEFORE INSERT ON case_events FOR EACH ROW EXECUTE FUNCTION case_events_chain();
CREATE TRIGGER case_events_no_update BEFORE UPDATE OR DELETE ON case_events
  FOR EACH ROW EXECUTE FUNCTION case_events_refuse_change();
CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events
  FOR EACH STATEMENT EXECUTE FUNCTION case_events_refuse_change();
"""


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE SEQUENCE case_number_seq")
    op.create_table('admin_areas',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=True),
    sa.Column('parent_code', sa.String(length=12), nullable=True),
    sa.CheckConstraint("code ~ '^[0-9]+$' AND length(code) IN (6, 9, 12)", name=op.f('ck_admin_areas_code_format')),
    sa.CheckConstraint("level IN ('district', 'street', 'community')", name=op.f('ck_admin_areas_level_known')),
    sa.ForeignKeyConstraint(['parent_code'], ['admin_areas.code'], name=op.f('fk_admin_areas_parent_code_admin_areas')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_admin_areas'))
    )
    with op.batch_alter_table('admin_areas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_areas_parent_code'), ['parent_code'], unique=False)

    op.create_table('calendar_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('workday', sa.Boolean(), nullable=False),
    sa.Column('name', sa.String(length=100), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_calendar_days'))
    )
    op.create_table('catalog_versions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_catalog_versions'))
    )
    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_key_at', ['key', 'at'], unique=False)

    op.create_table('settings',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings'))
    )
    op.create_table('teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('agencies', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('area_codes', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('grid_codes', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('category_codes', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('patrol', 'enforcement', 'community', 'supervision')", name=op.f('ck_teams_kind_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teams')),
    sa.UniqueConstraint('name', name=op.f('uq_teams_name'))
    )
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.create_index('ix_teams_category_codes', ['category_codes'], unique=False, postgresql_using='gin')

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('roles', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('scope', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('grid_codes', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("roles <@ ARRAY['inspector', 'dispatcher', 'handler', 'supervisor', 'admin']::text[]", name=op.f('ck_users_roles_known')),
    sa.CheckConstraint('cardinality(roles) > 0', name=op.f('ck_users_has_role')),
    sa.CheckConstraint('cardinality(scope) > 0', name=op.f('ck_users_has_scope')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('categories',
    sa.Column('code', sa.String(length=4), nullable=False),
    sa.Column('kind', sa.String(length=5), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('major_name_zh', sa.String(length=100), nullable=True),
    sa.Column('major_name_en', sa.String(length=100), nullable=True),
    sa.Column('team_kind', sa.String(length=12), nullable=False),
    sa.Column('filing_condition', sa.Text(), server_default='', nullable=False),
    sa.Column('closure_condition', sa.Text(), server_default='', nullable=False),
    sa.Column('limits', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('since_version', sa.Integer(), nullable=False),
    sa.Column('retired_in_version', sa.Integer(), nullable=True),
    sa.Column('public', sa.Boolean(), server_default='true', nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{4}$'", name=op.f('ck_categories_code_format')),
    sa.CheckConstraint("kind IN ('part', 'event')", name=op.f('ck_categories_kind_known')),
    sa.CheckConstraint("limits ?& array['A','B','C']", name=op.f('ck_categories_limits_complete')),
    sa.CheckConstraint("team_kind IN ('patrol', 'enforcement', 'community', 'supervision')", name=op.f('ck_categories_team_kind_known')),
    sa.ForeignKeyConstraint(['retired_in_version'], ['catalog_versions.version'], name=op.f('fk_categories_retired_in_version_catalog_versions')),
    sa.ForeignKeyConstraint(['since_version'], ['catalog_versions.version'], name=op.f('fk_categories_since_version_catalog_versions')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_categories'))
    )
    op.create_geospatial_table('grids',
    sa.Column('code', sa.String(length=15), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.Column('street_code', sa.String(length=9), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{15}$'", name=op.f('ck_grids_code_format')),
    sa.CheckConstraint('street_code = left(code, 9) AND community_code = left(code, 12) AND district_code = left(code, 6)', name=op.f('ck_grids_hierarchy_from_code')),
    sa.ForeignKeyConstraint(['community_code'], ['admin_areas.code'], name=op.f('fk_grids_community_code_admin_areas')),
    sa.ForeignKeyConstraint(['district_code'], ['admin_areas.code'], name=op.f('fk_grids_district_code_admin_areas')),
    sa.ForeignKeyConstraint(['street_code'], ['admin_areas.code'], name=op.f('fk_grids_street_code_admin_areas')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_grids'))
    )
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grids_community_code'), ['community_code'], unique=False)
        batch_op.create_geospatial_index('ix_grids_geom', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
        batch_op.create_index(batch_op.f('ix_grids_street_code'), ['street_code'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('scope', sa.String(length=100), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_keys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_geospatial_table('patrols',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('inspector_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('track', Geometry(geometry_type='LINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('length_m', sa.Float(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['inspector_id'], ['users.id'], name=op.f('fk_patrols_inspector_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrols'))
    )
    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.create_geospatial_index('idx_patrols_track', ['track'], unique=False, postgresql_using='gist', postgresql_ops={})
        batch_op.create_index(batch_op.f('ix_patrols_inspector_id'), ['inspector_id'], unique=False)

    op.create_table('tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_tokens_token_hash'))
    )
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('user_teams',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_user_teams_team_id_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_teams_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'team_id', name=op.f('pk_user_teams'))
    )
    with op.batch_alter_table('user_teams', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_teams_team_id'), ['team_id'], unique=False)

    op.create_geospatial_table('cases',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('category_code', sa.String(length=4), nullable=False),
    sa.Column('urgency', sa.String(length=1), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('location', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('grid_code', sa.String(length=15), nullable=True),
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.Column('street_code', sa.String(length=9), nullable=True),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('location_flags', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('catalog_version', sa.Integer(), nullable=True),
    sa.Column('contact', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lead_team_id', sa.Integer(), nullable=True),
    sa.Column('assisting_team_ids', sa.ARRAY(sa.Integer()), server_default='{}', nullable=False),
    sa.Column('parent_id', sa.BigInteger(), nullable=True),
    sa.Column('rework_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('extension_hours', sa.Float(), server_default='0', nullable=False),
    sa.Column('pending_extension', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('suspended_from', sa.String(length=12), nullable=True),
    sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deadline_register', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deadline_dispatch', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deadline_handle', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deadline_verify', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stage_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stage_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stage_clock', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('escalation_level', sa.Integer(), server_default='0', nullable=False),
    sa.Column('escalation_note', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(status = 'suspended') = (suspended_from IS NOT NULL)", name=op.f('ck_cases_suspension_consistent')),
    sa.CheckConstraint("source IN ('inspector', 'hotline', 'open311')", name=op.f('ck_cases_source_known')),
    sa.CheckConstraint("status <> 'merged' OR parent_id IS NOT NULL", name=op.f('ck_cases_merged_has_parent')),
    sa.CheckConstraint("status IN ('closed', 'dispatched', 'handled', 'in_progress', 'merged', 'registered', 'rejected', 'reported', 'returned', 'suspended')", name=op.f('ck_cases_status_known')),
    sa.CheckConstraint("status NOT IN ('dispatched','in_progress','handled') OR lead_team_id IS NOT NULL", name=op.f('ck_cases_dispatched_has_team')),
    sa.CheckConstraint("urgency IN ('A', 'B', 'C')", name=op.f('ck_cases_urgency_known')),
    sa.CheckConstraint('version >= 1 AND rework_count >= 0 AND extension_hours >= 0', name=op.f('ck_cases_counters')),
    sa.ForeignKeyConstraint(['category_code'], ['categories.code'], name=op.f('fk_cases_category_code_categories')),
    sa.ForeignKeyConstraint(['grid_code'], ['grids.code'], name=op.f('fk_cases_grid_code_grids')),
    sa.ForeignKeyConstraint(['lead_team_id'], ['teams.id'], name=op.f('fk_cases_lead_team_id_teams')),
    sa.ForeignKeyConstraint(['parent_id'], ['cases.id'], name=op.f('fk_cases_parent_id_cases')),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], name=op.f('fk_cases_reporter_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('number', name=op.f('uq_cases_number'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_category_reported', ['category_code', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_district_reported', ['district_code', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_grid', ['grid_code'], unique=False)
        batch_op.create_geospatial_index('ix_cases_location', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
        batch_op.create_geospatial_index('ix_cases_open_location', ['location'], unique=False, postgresql_using='gist', postgresql_where=sa.text("status IN ('dispatched', 'handled', 'in_progress', 'registered', 'reported', 'returned', 'suspended')"), postgresql_ops={})
        batch_op.create_index(batch_op.f('ix_cases_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index('ix_cases_registered_at', ['registered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_reporter_id'), ['reporter_id'], unique=False)
        batch_op.create_index('ix_cases_status_reported', ['status', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_street', ['street_code'], unique=False)
        batch_op.create_index('ix_cases_team_status', ['lead_team_id', 'status'], unique=False)

    op.create_table('grid_visits',
    sa.Column('patrol_id', sa.BigInteger(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('inspector_id', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['grid_code'], ['grids.code'], name=op.f('fk_grid_visits_grid_code_grids')),
    sa.ForeignKeyConstraint(['inspector_id'], ['users.id'], name=op.f('fk_grid_visits_inspector_id_users')),
    sa.ForeignKeyConstraint(['patrol_id'], ['patrols.id'], name=op.f('fk_grid_visits_patrol_id_patrols')),
    sa.PrimaryKeyConstraint('patrol_id', 'grid_code', 'day', name=op.f('pk_grid_visits'))
    )
    with op.batch_alter_table('grid_visits', schema=None) as batch_op:
        batch_op.create_index('ix_grid_visits_day_grid', ['day', 'grid_code'], unique=False)

    op.create_geospatial_table('patrol_points',
    sa.Column('patrol_id', sa.BigInteger(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patrol_id'], ['patrols.id'], name=op.f('fk_patrol_points_patrol_id_patrols')),
    sa.PrimaryKeyConstraint('patrol_id', 'seq', 'idx', name=op.f('pk_patrol_points'))
    )
    op.create_table('case_events',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=12), nullable=True),
    sa.Column('to_status', sa.String(length=12), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('client_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=True),
    sa.CheckConstraint("action IN ('accept', 'decide_extension', 'dispatch', 'escalate', 'handle', 'merge', 'register', 'reject', 'report', 'request_extension', 'resume', 'return', 'suspend', 'verify_fail', 'verify_pass')", name=op.f('ck_case_events_action_known')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_case_events_actor_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_events_case_id_cases')),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_case_events_team_id_teams')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_events')),
    sa.UniqueConstraint('case_id', 'seq', name=op.f('uq_case_events_case_id_seq'))
    )
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index('ix_case_events_action_at', ['action', 'at'], unique=False)

    op.create_table('photos',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('mime', sa.String(length=20), nullable=False),
    sa.Column('served_mime', sa.String(length=20), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=200), nullable=False),
    sa.Column('thumb_key', sa.String(length=200), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('exif_taken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('exif_lon', sa.Float(), nullable=True),
    sa.Column('exif_lat', sa.Float(), nullable=True),
    sa.Column('flags', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('before', 'after', 'verification')", name=op.f('ck_photos_kind_known')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_photos_case_id_cases')),
    sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], name=op.f('fk_photos_uploaded_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photos'))
    )
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_photos_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_photos_sha256', ['sha256'], unique=False)

    op.execute(EVENT_HASH)


def downgrade():
    op.execute("DROP TRIGGER case_events_no_truncate ON case_events")
    op.execute("DROP TRIGGER case_events_no_update ON case_events")
    op.execute("DROP TRIGGER case_events_chain ON case_events")
    op.execute("DROP FUNCTION case_events_refuse_change(); DROP FUNCTION case_events_chain();"
               " DROP FUNCTION case_event_hash(case_events, text)")
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_index('ix_photos_sha256')
        batch_op.drop_index(batch_op.f('ix_photos_case_id'))

    op.drop_table('photos')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index('ix_case_events_action_at')

    op.drop_table('case_events')
    op.drop_geospatial_table('patrol_points')
    with op.batch_alter_table('grid_visits', schema=None) as batch_op:
        batch_op.drop_index('ix_grid_visits_day_grid')

    op.drop_table('grid_visits')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_team_status')
        batch_op.drop_index('ix_cases_street')
        batch_op.drop_index('ix_cases_status_reported')
        batch_op.drop_index(batch_op.f('ix_cases_reporter_id'))
        batch_op.drop_index('ix_cases_registered_at')
        batch_op.drop_index(batch_op.f('ix_cases_parent_id'))
        batch_op.drop_geospatial_index('ix_cases_open_location', postgresql_using='gist', postgresql_where=sa.text("status IN ('dispatched', 'handled', 'in_progress', 'registered', 'reported', 'returned', 'suspended')"), column_name='location')
        batch_op.drop_geospatial_index('ix_cases_location', postgresql_using='gist', column_name='location')
        batch_op.drop_index('ix_cases_grid')
        batch_op.drop_index('ix_cases_district_reported')
        batch_op.drop_index('ix_cases_category_reported')

    op.drop_geospatial_table('cases')
    with op.batch_alter_table('user_teams', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_teams_team_id'))

    op.drop_table('user_teams')
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tokens_user_id'))

    op.drop_table('tokens')
    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrols_inspector_id'))
        batch_op.drop_geospatial_index('idx_patrols_track', postgresql_using='gist', column_name='track')

    op.drop_geospatial_table('patrols')
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grids_street_code'))
        batch_op.drop_geospatial_index('ix_grids_geom', postgresql_using='gist', column_name='geom')
        batch_op.drop_index(batch_op.f('ix_grids_community_code'))

    op.drop_geospatial_table('grids')
    op.drop_table('categories')
    op.drop_table('users')
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.drop_index('ix_teams_category_codes', postgresql_using='gin')

    op.drop_table('teams')
    op.drop_table('settings')
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempts_key_at')

    op.drop_table('login_attempts')
    op.drop_table('catalog_versions')
    op.drop_table('calendar_days')
    with op.batch_alter_table('admin_areas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_areas_parent_code'))

    op.drop_table('admin_areas')
    op.execute("DROP SEQUENCE case_number_seq")
