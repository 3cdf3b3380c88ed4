# The portal image: gunicorn (web), celery worker and celery beat all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORTAL_VAR_DIR=/app/var

RUN groupadd --system portal && useradd --system --gid portal --home-dir /app portal

WORKDIR /app
# Runtime requirements only: the tests and tools (requirements-dev.txt) stay out of the image.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=portal:portal . .
# Static files are collected at build time (demo defaults suffice: no database
# or Okta is touched) and served by whitenoise.
RUN python manage.py collectstatic --noinput \
    && mkdir -p /app/var \
    && chown -R portal:portal /app/var /app/staticfiles

USER portal
EXPOSE 8000
# gthread workers: a worker's main loop keeps telling the arbiter it is alive while a
# thread streams a long export, so --timeout (30 s) never cuts a download short (a sync
# worker reports only between requests: a 100,000-row export was killed mid-stream).
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "5", \
     "--worker-class", "gthread", "--threads", "2", "--access-logfile", "-"]
