# One image for the API, the workers, beat and the model build.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# CPU build of torch first, so the project's dependencies do not pull a GPU build.
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"
RUN pip install --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC"

COPY pyproject.toml README.md ./
COPY moderation ./moderation
COPY workers ./workers
# toxic-comment-classifier without its TensorFlow requirement: only its weights are used.
RUN pip install ".[ops]" && pip install --no-deps "toxic-comment-classifier==0.3.0" \
    && useradd --create-home --uid 10001 moderation
USER moderation

ENV MODERATION_MODEL=/models/default
EXPOSE 8000
CMD ["gunicorn", "--config", "python:moderation.gunicorn_conf", "moderation.wsgi:app", "--bind", "0.0.0.0:8000", "--workers", "2"]
