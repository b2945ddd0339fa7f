FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dualsync ./dualsync
COPY examples ./examples
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT []
CMD ["dualsync", "worker"]
