-- The portal's two database roles (docs/security.md "Database roles").
--
--   portal_owner  owns the schema; `manage.py migrate` connects as it (DATABASE_OWNER_URL).
--   portal_app    what web, worker and beat connect as (DATABASE_URL). migrate grants it
--                 SELECT/INSERT/UPDATE/DELETE on the tables and only SELECT/INSERT on
--                 the audit log; it owns nothing, so it cannot ALTER or disable triggers.
--
-- Run once, as a superuser (or RDS's master user), connected to the portal's database:
--   psql "$ADMIN_URL" -v dbname=portal -v owner_password=... -v app_password=... \
--        -f deploy/postgres/roles.sql
-- docker-compose.yml runs it through deploy/postgres/init-roles.sh on first start.
\set ON_ERROR_STOP on
-- Other role names: -v owner_role=... -v app_role=...
\if :{?owner_role}
\else
  \set owner_role portal_owner
\endif
\if :{?app_role}
\else
  \set app_role portal_app
\endif

CREATE ROLE :"owner_role" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"app_role" LOGIN PASSWORD :'app_password';
-- RDS: the master user is no superuser; it must be a member of a role to hand it
-- ownership. Harmless elsewhere.
GRANT :"owner_role" TO CURRENT_USER;

ALTER DATABASE :"dbname" OWNER TO :"owner_role";
REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"dbname" TO :"app_role";

-- Only the owner creates objects (PostgreSQL < 15 let everyone create in public).
ALTER SCHEMA public OWNER TO :"owner_role";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_role";
