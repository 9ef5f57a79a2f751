#!/usr/bin/env bash
# Fleet pace: 1,000 simulated DPUs x 20 crossings, one crossing per QoS 1 message, published
# through Mosquitto into one `roomer ingest` with `roomer api` beside it; prints how long the
# publisher took, how long until all 20,000 crossings were stored (polling /api/v1/totals every
# 100 ms) and their ratio, the pace (1.0: stored as fast as published).
#
#   cargo build --release
#   scripts/fleet-pace.sh sqlite:///tmp/pace.db?mode=rwc        # a fresh file
#   scripts/fleet-pace.sh postgres://postgres:postgres@127.0.0.1:5432/pace   # an empty database
#
# Needs mosquitto (TEST_MOSQUITTO, default /usr/sbin/mosquitto), curl and bc. Extra flags for
# `roomer ingest` go in PACE_FLAGS (e.g. PACE_FLAGS="--batch-size 500"); its log filter in
# PACE_LOG (default warn; PACE_LOG=warn,sqlx::query=debug logs every statement with its time,
# and the logs are kept: scripts/statement-times.py sums them per statement).
set -u
DB="$1"
R=${ROOMER:-$(dirname "$0")/../target/release/roomer}
MOSQUITTO=${TEST_MOSQUITTO:-/usr/sbin/mosquitto}
D=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(port); HTTP=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n' $PORT > "$D/m.conf"
"$MOSQUITTO" -c "$D/m.conf" > "$D/mosq.log" 2>&1 & MQ=$!
sleep 0.5
"$R" simulate fleet --dpus 1000 --rooms 100 --events-per-dpu 20 --print-layout > "$D/layout.toml" 2>/dev/null
DATABASE_URL="$DB" "$R" layout apply "$D/layout.toml" > /dev/null
DATABASE_URL="$DB" RUST_LOG=${PACE_LOG:-warn} "$R" ingest --mqtt-url "mqtt://127.0.0.1:$PORT" --client-id pace-1 ${PACE_FLAGS:-} > "$D/ingest.log" 2>&1 & IN=$!
DATABASE_URL="$DB" RUST_LOG=warn "$R" api --http-addr "127.0.0.1:$HTTP" --public-read > "$D/api.log" 2>&1 & API=$!
sleep 2
start=$(date +%s.%N)
"$R" simulate fleet --dpus 1000 --rooms 100 --events-per-dpu 20 --mqtt-url "mqtt://127.0.0.1:$PORT" > "$D/sim.log" 2>&1
pub=$(date +%s.%N)
while true; do
  n=$(curl -s "http://127.0.0.1:$HTTP/api/v1/totals" | sed -n 's/.*"crossings":\([0-9]*\).*/\1/p')
  [ "${n:-0}" -ge 20000 ] && break
  now=$(date +%s.%N); if (( $(echo "$now - $start > 120" | bc) )); then echo "timeout at $n"; break; fi
  sleep 0.1
done
done_=$(date +%s.%N)
echo "$DB publish $(echo "$pub - $start" | bc) s, stored $(echo "$done_ - $start" | bc) s, pace $(echo "scale=2; ($pub - $start) / ($done_ - $start)" | bc), crossings ${n:-?}"
kill $IN $API $MQ 2>/dev/null; wait 2>/dev/null
if [ "${n:-0}" -ge 20000 ] && [ -z "${PACE_LOG:-}" ]; then rm -rf "$D"; else echo "logs in $D"; fi
