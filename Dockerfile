# syntax=docker/dockerfile:1
# The callslo production image. It runs `callslo worker` by default; any other subcommand
# replaces the CMD:
#   docker build -t callslo:local .
#   docker run --rm -e CALLSLO_BOOTSTRAP=broker:9092 callslo:local
#   docker run --rm -i callslo:local validate - < events.jsonl
# docker-compose.yml builds this image and runs it next to a Kafka broker.
FROM python:3.11-slim

# Logs reach `docker logs` line by line instead of in 4 KiB blocks.
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric id so that volume ownership is predictable and Kubernetes' runAsNonRoot
# can verify the USER below without resolving a name.
RUN groupadd --system --gid 10001 callslo \
 && useradd --system --uid 10001 --gid callslo --create-home --home-dir /home/callslo \
            --shell /usr/sbin/nologin callslo

# Only what the install needs: the dev broker's pom, tests, bench and docs stay out.
WORKDIR /opt/callslo/src
COPY pyproject.toml constraints.txt README.md ./
COPY streams/ streams/
COPY kernels/ kernels/
# constraints.txt pins every dependency, so the image runs the versions the tests ran with.
RUN pip install --no-cache-dir -c constraints.txt .

# Created and chowned before VOLUME: a fresh named volume copies this ownership, so the
# non-root worker can write Faust's data directory. Numba writes its compiled kernels to
# NUMBA_CACHE_DIR because site-packages is read-only for that user.
RUN mkdir -p /var/lib/callslo /var/cache/callslo/numba \
 && chown -R callslo:callslo /var/lib/callslo /var/cache/callslo
ENV CALLSLO_DATA_DIR=/var/lib/callslo \
    NUMBA_CACHE_DIR=/var/cache/callslo/numba
VOLUME ["/var/lib/callslo"]

USER 10001:10001
WORKDIR /home/callslo

# The worker's web server (web.port). It listens on 127.0.0.1 unless CALLSLO_WEB_HOST says
# otherwise; docker-compose.yml sets 0.0.0.0 so that the published port reaches it.
EXPOSE 6066

# Faust serves "/" once the worker has joined its group and recovered its tables. The check
# follows CALLSLO_WEB_PORT; a port set only in a settings file needs its own HEALTHCHECK.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)" \
        "http://127.0.0.1:${CALLSLO_WEB_PORT:-6066}/healthz"

ENTRYPOINT ["callslo"]
CMD ["worker"]
