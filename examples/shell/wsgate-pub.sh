#!/bin/sh
# Publishes DATA (a JSON object) to every connection of USER with wsgate-pub, over NATS as the
# `service` user (a Delivery request on <prefix>.api.publish), and prints the answer: the
# same JSON line the HTTP API gives, e.g.
#   {"accepted":true,"id":"shell-1234","stream":"user","user":"alice","seq":4,...}
# Exit status: wsgate-pub's: 0 when the publish was accepted, 1 when not, 2 on a usage error.
#
# Usage: examples/shell/wsgate-pub.sh USER [DATA]
# Environment (wsgate-pub reads the WSGATE_* ones itself):
#   WSGATE_NATS_URL       default nats://127.0.0.1:4222 (scripts/dev)
#   WSGATE_NATS_USER      default service (deploy/nats/nats.conf)
#   WSGATE_NATS_PASSWORD  its password: scripts/dev prints it (nats://service:<password>@...)
#   WSGATE_PREFIX         the cluster's subject prefix, default wsgate
#   WSGATE_PUB            the wsgate-pub binary; default: the one on the PATH, else this
#                         tree's build/wsgate-pub
#   WSGATE_API_URL        set: publish over the HTTP API there instead (with WSGATE_API_KEY)
set -eu

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
user=$1
data=${2:-'{"type":"chat.notice","text":"hello from wsgate-pub"}'}

pub=${WSGATE_PUB:-}
if [ -z "$pub" ]; then
    pub=$(command -v wsgate-pub || true)
    [ -n "$pub" ] || pub="$(cd "$(dirname "$0")/../.." && pwd)/build/wsgate-pub"
fi

if [ -n "${WSGATE_API_URL:-}" ]; then
    exec "$pub" --http "$WSGATE_API_URL" --user "$user" --id "shell-$$" "$data"
fi
export WSGATE_NATS_USER="${WSGATE_NATS_USER:-service}"
exec "$pub" --user "$user" --id "shell-$$" "$data"
