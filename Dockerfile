# wsgate container images, all built from Debian bookworm packages only.
#
#   docker build -t wsgate .          the wsgate image (last stage): wsgate-gateway (default
#                                     command), wsgate-router and the wsgate-pub command-line
#                                     publisher, runtime libraries only, non-root, HEALTHCHECK
#                                     on /health
#   --target nats | redis | nginx     the development copies docker-compose.yml runs next to it
#
# The legacy builder (no BuildKit) builds every stage up to the target, so the small nats,
# redis and nginx stages come first: building the default target builds them too (cached),
# building one of them never compiles wsgate.
#
# No secret is baked in: WSGATE_JWT_SECRET and friends come from the environment at run time.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- nats: Debian's nats-server, for docker-compose ----------------------------------------
FROM ${DEBIAN_IMAGE} AS nats
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# wsgate's authorization (users per role); the passwords come from the environment.
COPY deploy/nats/nats.conf /etc/nats/wsgate.conf
USER nobody
EXPOSE 4222 8222
# -m: the monitoring port, whose /healthz the compose healthcheck asks.
CMD ["nats-server", "-c", "/etc/nats/wsgate.conf", "-a", "0.0.0.0", "-p", "4222", "-m", "8222"]

# ---- redis: Debian's redis-server (and redis-sentinel, for the cluster profile) -------------
FROM ${DEBIAN_IMAGE} AS redis
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
      redis-sentinel \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
# Append-only file in /data (a volume in compose), so the registry and the resume history
# survive a container restart. No password: the port is only on the compose network.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes", "--dir", "/data"]

# ---- nginx: the load balancer in front of the gateways, config from deploy/nginx ------------
FROM ${DEBIAN_IMAGE} AS nginx
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled /etc/nginx/conf.d
COPY deploy/nginx/nginx.conf /etc/nginx/nginx.conf
COPY deploy/nginx/nginx-run /usr/local/bin/nginx-run
USER www-data
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /nginx-health HTTP/1.0\\r\\n\\r\\n' >&3 && read -r -t 3 _ code _ <&3 && [ \"$code\" = 200 ]"]
CMD ["nginx-run"]

# ---- prometheus: Debian's Prometheus with wsgate's scrape config and alert rules, for -------
# ---- docker-compose's `monitoring` profile ----------------------------------------------------
FROM ${DEBIAN_IMAGE} AS prometheus
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
COPY deploy/prometheus/prometheus.yml /etc/prometheus/prometheus.yml
COPY helm/wsgate/files/wsgate-alerts.yml /etc/prometheus/wsgate-alerts.yml
# the image is not built with a config Prometheus would refuse (rules included)
RUN promtool check config /etc/prometheus/prometheus.yml
USER prometheus
EXPOSE 9090
CMD ["prometheus", "--config.file=/etc/prometheus/prometheus.yml", \
     "--storage.tsdb.path=/prometheus", "--web.listen-address=0.0.0.0:9090"]

# ---- build: compile both services and wsgate-pub (Release) with the -dev packages --------------------------
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libwebsockets-dev libnats-dev libprotobuf-c-dev protobuf-c-compiler \
      libhiredis-dev libjansson-dev libjwt-dev libssl-dev uthash-dev libev-dev libuv1-dev \
      libcurl4-openssl-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the binaries are built from, so a change elsewhere keeps this layer cached.
# bench/ is listed because the top-level CMakeLists.txt always adds it.
COPY CMakeLists.txt ./
COPY proto proto
COPY common common
COPY gateway gateway
COPY router-svc router-svc
COPY bench/CMakeLists.txt bench/*.c bench/*.h bench/
COPY bench/ref/climit/*.c bench/ref/climit/*.h bench/ref/climit/
COPY tools/wsgate-pub tools/wsgate-pub
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWSGATE_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target wsgate-gateway wsgate-router wsgate-pub \
 && strip build/wsgate-gateway build/wsgate-router build/wsgate-pub
# The runtime packages are the ones owning the shared libraries the binaries load, so the
# runtime stage installs exactly those and no hand-kept list can drift from the link line.
RUN ldd build/wsgate-gateway build/wsgate-router build/wsgate-pub >/tmp/ldd \
 && ! grep "not found" /tmp/ldd \
 && for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' /tmp/ldd | sort -u); do \
      dpkg -S "*/${lib##*/}" >/tmp/owner || exit 1; \
      head -n 1 /tmp/owner | cut -d: -f1 >>/tmp/packages; \
    done \
 && sort -u /tmp/packages >/src/runtime-packages \
 && test -s /src/runtime-packages

# ---- wsgate: the runtime image ---------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS wsgate
COPY --from=build /src/runtime-packages /tmp/runtime-packages
# libwebsockets-evlib-ev: the gateway runs lws on libev, whose lws plugin is loaded with
# dlopen, out of ldd's sight. ca-certificates: the gateway fetches WSGATE_JWT_JWKS_URL over
# https with libcurl.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(cat /tmp/runtime-packages) libwebsockets-evlib-ev ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin wsgate
# The healthcheck probe: bash's /dev/tcp, so the image needs no HTTP client. It finds which
# service runs here and where it listens (flag, else environment, else the default), and
# succeeds when that answers 200 on the path given (default /health; compose asks /ready).
RUN printf '%s\n' \
  '#!/bin/bash' \
  'path=${1:-/health}' \
  'addr=' \
  'for dir in /proc/[0-9]*; do' \
  '  comm=$(cat "$dir/comm" 2>/dev/null) || continue' \
  '  case $comm in' \
  '    wsgate-router) flag=--http-listen; addr=${WSGATE_HTTP_LISTEN:-0.0.0.0:8090} ;;' \
  '    wsgate-gateway) flag=--listen; addr=${WSGATE_LISTEN:-0.0.0.0:8080} ;;' \
  '    *) continue ;;' \
  '  esac' \
  '  prev=' \
  '  while IFS= read -r -d "" arg; do' \
  '    case $arg in "$flag="*) addr=${arg#"$flag="} ;; esac' \
  '    [ "$prev" = "$flag" ] && addr=$arg' \
  '    prev=$arg' \
  '  done < "$dir/cmdline"' \
  '  break' \
  'done' \
  '[ -n "$addr" ] || { echo "no wsgate process" >&2; exit 1; }' \
  'host=${addr%:*}; port=${addr##*:}; host=${host#[}; host=${host%]}' \
  'case $host in ""|0.0.0.0|"*") host=127.0.0.1 ;; ::) host=::1 ;; esac' \
  'exec 3<>"/dev/tcp/$host/$port" || exit 1' \
  'printf "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" "$path" >&3' \
  'read -r -t 3 _ code _ <&3 || exit 1' \
  '[ "$code" = 200 ] || { echo "$path answered $code" >&2; exit 1; }' \
  > /usr/local/bin/wsgate-healthcheck \
 && chmod 0755 /usr/local/bin/wsgate-healthcheck
# wsgate-pub links libcurl (its HTTP mode), as does the gateway (JWKS fetches), for
# `docker exec ... wsgate-pub` in any container of the cluster.
COPY --from=build /src/build/wsgate-gateway /src/build/wsgate-router /src/build/wsgate-pub \
     /usr/local/bin/
# The demo app the gateway serves at /demo/ with WSGATE_DEMO=on (WSGATE_DEMO_DIR's default).
COPY examples/chat /usr/share/wsgate/demo
COPY clients/js/wsgate-client.mjs /usr/share/wsgate/demo/client/
# The cluster console the router serves at /console/ (WSGATE_CONSOLE_DIR's default).
COPY router-svc/console /usr/share/wsgate/console
# Channel namespaces for docker-compose: the default one and the demo's chat:* (join/leave).
COPY deploy/wsgate/channel-namespaces.json /etc/wsgate/channel-namespaces.json
USER 10001:10001
# 8080: gateway /ws /health /ready /metrics; 8090: router /health /ready /metrics /api /console.
EXPOSE 8080 8090
# SIGTERM (docker stop) drains the gateway over WSGATE_DRAIN_SECONDS (10 s): give it longer,
# e.g. `docker stop -t 15` or compose's stop_grace_period.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["wsgate-healthcheck"]
CMD ["wsgate-gateway"]
