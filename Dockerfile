# One image for the API, the workers, beat, Flower and the model build; production settings.
# BASE_IMAGE: any Python 3.11 image with pip on PATH (tests/compose builds one from Debian).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# CPU build of torch first, so the project's dependencies do not pull a GPU build.
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"
RUN pip install --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC"

# The dependencies in a layer of their own, which a change to the code does not rebuild.
# toxic-comment-classifier without its TensorFlow requirement: only its weights are used.
COPY pyproject.toml README.md ./
RUN mkdir moderation workers && touch moderation/__init__.py workers/__init__.py \
    && pip install ".[ops]" && pip install --no-deps "toxic-comment-classifier==0.3.0" \
    && pip uninstall --yes comment-moderation && rm -rf moderation workers build ./*.egg-info

COPY moderation ./moderation
COPY workers ./workers
# /models belongs to the service's user: a new volume mounted there takes its owner, so the
# one-shot model build can write into it.
RUN pip install --no-deps . && rm -rf build ./*.egg-info \
    && useradd --create-home --uid 10001 moderation \
    && mkdir -p /models && chown moderation:moderation /models
USER moderation

# Production: the secret key (and the rest) must come from the environment; see docker-compose.yml.
ENV MODERATION_ENV=production MODERATION_MODEL=/models/default
EXPOSE 8000
CMD ["gunicorn", "--config", "python:moderation.gunicorn_conf", "moderation.wsgi:app", "--bind", "0.0.0.0:8000", "--workers", "2"]
