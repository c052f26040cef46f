# ramtid: the gRPC service with the default model.
#
#   docker build -t ramtid .
#   docker run --rm -p 50051:50051 -p 9464:9464 ramtid
#   docker run --rm -v "$PWD/data:/data:ro" -v ramtid-models:/app/models ... ramtid   # TrainModel data
#
# Configuration by environment (RAMTID__SECTION__KEY) or a mounted /app/ramtid.toml.

# ---- build: the release binary (protoc comes from the protoc-bin-vendored crate) ----
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY src src
COPY benches benches
COPY tests tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ramtid \
    && install -m 0755 target/release/ramtid /usr/local/bin/ramtid \
    && mkdir -p /out/state

# ---- runtime: glibc and nothing else, as a non-root user ----
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /usr/local/bin/ramtid /usr/local/bin/ramtid
# The default model; owned by the service user so that ReloadModels/TrainModel can add versions.
COPY --chown=65532:65532 models /app/models
# The service's own state, the calculation history and the audit log, in a directory the
# service user may write (the data directory may be mounted read-only); mount a volume there
# to keep it.
COPY --from=build --chown=65532:65532 /out/state /var/lib/ramtid
VOLUME ["/var/lib/ramtid"]
ENV RAMTID__SERVER__LISTEN=0.0.0.0:50051 \
    RAMTID__SERVER__METRICS_LISTEN=0.0.0.0:9464 \
    RAMTID__MODELS__DIR=/app/models \
    RAMTID__DATA__DIR=/data \
    RAMTID__HISTORY__URL=sqlite:///var/lib/ramtid/history.db \
    RAMTID__AUDIT__FILE=/var/lib/ramtid/audit.log \
    RAMTID__LOG__FORMAT=json
EXPOSE 50051 9464
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/ramtid", "health", "--addr", "127.0.0.1:50051", "--timeout-ms", "2000"]
ENTRYPOINT ["/usr/local/bin/ramtid"]
CMD ["serve"]
