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
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--access-logfile", "-"]
