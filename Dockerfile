# zerotouch: relay and workers (`zerotouch relay ...`, `zerotouch worker --queue ...`).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY zerotouch ./zerotouch
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY starters ./starters
COPY embedded ./embedded
COPY cli ./cli
COPY sandbox ./sandbox
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ZEROTOUCH_POLICY=/etc/zerotouch/zerotouch.yaml
# PostgreSQL's client and server binaries: the backup worker runs pg_basebackup, pg_dump,
# pg_verifybackup and pg_restore, and starts throwaway clusters for its test restores.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels zerotouch \
 && useradd --system --uid 10001 --home-dir /home/zerotouch --create-home zerotouch
# The shipped policy as a default; compose and Kubernetes mount their own over it.
COPY deploy/policy/zerotouch.yaml /etc/zerotouch/zerotouch.yaml
USER 10001
WORKDIR /home/zerotouch
CMD ["zerotouch", "--help"]
