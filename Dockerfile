# Warren node image: docker build -t warren:0.1.0 .
# Build stage: the release binary, with the toolchain the project builds with.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin warren \
    && strip target/release/warren

# Runtime: a slim Debian with the binary and the config files, as an unprivileged user.
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 warren \
    && useradd --system --uid 10001 --gid warren --no-create-home --home-dir /nonexistent warren
COPY --from=build /src/target/release/warren /usr/local/bin/warren
COPY config/ /etc/warren/
# Listen on every interface inside the container; everything else keeps the embedded defaults.
ENV WARREN_HTTP__LISTEN=0.0.0.0:7350 \
    WARREN_CLUSTER__LISTEN=0.0.0.0:7351
EXPOSE 7350 7351
USER 10001:10001
# SIGTERM drains the node (readiness 503, rooms handed over, sessions closed with 4001), then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/warren"]
