#!/bin/sh
# docker-entrypoint-initdb.d hook (first start of an empty volume): create the
# portal's owner and runtime roles with the passwords from .env.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v dbname="$POSTGRES_DB" \
  -v owner_password="$PORTAL_OWNER_PASSWORD" \
  -v app_password="$PORTAL_APP_PASSWORD" \
  -f /portal-sql/roles.sql
