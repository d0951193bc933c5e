# cassette-proxy in a container: docker build -t cassette-proxy . &&
#   docker run -p 8080:8080 -v "$PWD/cassettes:/app/cassettes" cassette-proxy serve --mode replay
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CASSETTE_PROXY_HOST=0.0.0.0 \
    CASSETTE_PROXY_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
RUN pip install . \
    && useradd --create-home --uid 10001 cassette \
    && mkdir -p /app/cassettes \
    && chown cassette:cassette /app/cassettes

USER cassette
VOLUME ["/app/cassettes"]
EXPOSE 8080

# The health route answers loopback clients, which is what the check is inside the container.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/_proxy/health', timeout=2).status == 200 else 1)"

ENTRYPOINT ["cassette-proxy"]
CMD ["serve"]
