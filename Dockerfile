# signgate webhook image: a virtualenv built in a throwaway stage, copied into a slim runtime
# that has no compilers, no pip and no shell tools beyond the base image, running as non-root.
FROM python:3.11-slim AS build
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY operator ./operator
# The runtime dependencies only (no test group), and signgate itself as a regular install.
RUN UV_PROJECT_ENVIRONMENT=/opt/signgate uv sync --locked --no-default-groups --no-editable

FROM python:3.11-slim
RUN pip uninstall -y pip setuptools wheel 2>/dev/null || true
COPY --from=build /opt/signgate /opt/signgate
ENV PATH=/opt/signgate/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["signgate"]
CMD ["serve", "--tls-cert=/tls/tls.crt", "--tls-key=/tls/tls.key"]
