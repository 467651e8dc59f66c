# Navigator: a slim, non-root image. The default command applies migrations and then serves
# with several workers; run the same image with `navigator worker` for the SMS dispatcher and
# daily jobs (see README, "Deploying").
# The NHS.UK frontend is built from the npm lock file in its own stage; only the compiled CSS,
# JavaScript and assets reach the final image (no Node.js at run time).
FROM node:20-slim AS frontend
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && mkdir -p nhsuk \
    && cp node_modules/nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.css \
          node_modules/nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.js nhsuk/ \
    && cp -R node_modules/nhsuk-frontend/dist/nhsuk/assets nhsuk/assets

FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    NAVIGATOR_ENV=production NAVIGATOR_DATA_DIR=/srv/navigator/var

WORKDIR /srv/navigator
RUN groupadd --system navigator && useradd --system --gid navigator --home /srv/navigator navigator

COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY app ./app
COPY --from=frontend /build/nhsuk ./app/ui/static/nhsuk
COPY migrations ./migrations
COPY models ./models
RUN pip install -c constraints.txt -e . && mkdir -p var && chown -R navigator:navigator var models

USER navigator
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health').status == 200 else 1)"
CMD ["sh", "-c", "navigator db upgrade && exec navigator serve --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-4}"]
