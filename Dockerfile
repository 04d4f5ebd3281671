# syntax=docker/dockerfile:1
# One multi-stage build for every container of the platform.
#   runtime (default): the long-lived binaries (engine with MongoDB support, persist, candle
#     consumer, price feed, WebSocket hub, the local runner, migrate) on a small non-root image;
#   web: the built web page and API reference (web/dist) on an unprivileged nginx.
# Dependencies are compiled in their own cached layer (cargo-chef): editing the sources
# rebuilds only the workspace crates.

ARG RUST_IMAGE=rust:1-slim-bookworm

FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --workspace --all-features --recipe-path recipe.json
COPY . .
# The same workspace and features as the cook above, so its compiled dependencies are reused.
RUN cargo build --release --locked --workspace --all-features \
      --bin engine --bin price-feed --bin ws-hub --bin candle_ingest --bin persist \
      --bin exness-local --bin migrate --bin alerts \
 && mkdir /out \
 && cp target/release/engine target/release/price-feed target/release/ws-hub \
       target/release/candle_ingest target/release/persist target/release/exness-local \
       target/release/migrate target/release/alerts /out/

FROM node:20-bookworm-slim AS web-build
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY functions/openapi.json /src/functions/openapi.json
COPY web/ ./
RUN npm run build

FROM nginxinc/nginx-unprivileged:1.27-alpine AS web
COPY local/nginx/site.conf.template /etc/nginx/templates/default.conf.template
COPY --from=web-build /src/web/dist /usr/share/nginx/html
ENV NGINX_PORT=8080 INDEX_PAGE=index.html API_URL=http://localhost:3001 WS_URL=ws://localhost:7070/ \
    API_UPSTREAM=http://functions:8000
EXPOSE 8080

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin exness
COPY --from=builder /out/ /usr/local/bin/
USER 10001:10001
# The container's command names the binary: engine, persist, candle_ingest, price-feed,
# ws-hub, migrate, alerts or exness-local (the default: the whole platform in one process).
CMD ["exness-local"]
