#!/bin/sh
# Publishes DATA (a JSON object) to every connection of USER with curl, through a router's
# HTTP API (POST /api/publish), and prints the router's answer, e.g.
#   {"accepted":true,"id":"","stream":"user","user":"alice","seq":3,...,"connections":1,"nodes":1}
# Exit status: 0 when the publish was accepted, non-zero otherwise (curl's 22 for a 4xx/5xx
# answer, whose body is printed too).
#
# Usage: examples/shell/curl.sh USER [DATA]
# Environment:
#   WSGATE_API_URL  the router's HTTP port (WSGATE_HTTP_LISTEN); default http://127.0.0.1:8090,
#                   where scripts/dev runs it
#   WSGATE_API_KEY  the API key (`Authorization: apikey <key>`); unset: none is sent, which a
#                   router whose HTTP listener is on loopback (scripts/dev) accepts
set -eu

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
user=$1
data=${2:-'{"type":"chat.notice","text":"hello from curl"}'}
url=${WSGATE_API_URL:-http://127.0.0.1:8090}

# USER goes into a JSON string: escape \ and " (a user id holds no control characters).
user_json=$(printf '%s' "$user" | sed 's/[\\"]/\\&/g')
body=$(printf '{"user":"%s","data":%s}' "$user_json" "$data")

# The key goes to curl on stdin (-H @-), not on its command line, where any local user could
# read it (ps). An empty Expect: makes curl send a larger body at once rather than first ask
# for a 100 Continue and wait a second for it.
status=0
printf 'Authorization: apikey %s\n' "${WSGATE_API_KEY:-}" | {
    if [ -n "${WSGATE_API_KEY:-}" ]; then set -- -H @-; else set --; fi
    curl --silent --show-error --fail-with-body --max-time 10 \
        -H 'Content-Type: application/json' -H 'Expect:' "$@" \
        --data-binary "$body" "$url/api/publish"
} || status=$?
echo # the answer has no newline of its own
exit "$status"
