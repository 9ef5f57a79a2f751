#!/usr/bin/env bash
# What a kill -9 of `roomer serve` loses under a steady load: 50 DPUs making 2,000
# crossings/s for 5 s in bulk uploads of 10; the server is killed 2.5 s in and started again,
# the DPUs resend what was not acknowledged, then acknowledged and stored crossings are
# compared. Usage: scripts/crash-loss.sh store|receipt [runs]   (after cargo build --release)
set -euo pipefail
mode=${1:?store or receipt}
runs=${2:-3}
roomer=$(cd "$(dirname "$0")/.." && pwd)/target/release/roomer
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for _ in $(seq "$runs"); do
    dir=$(mktemp -d)
    export DATABASE_URL=sqlite://$dir/roomer.db
    mqtt=$(port); http=$(port)
    "$roomer" simulate fleet --dpus 50 --rooms 10 --print-layout > "$dir/layout.toml"
    "$roomer" layout apply "$dir/layout.toml" > /dev/null
    serve() { "$roomer" serve --ack "$mode" --mqtt-addr 127.0.0.1:$mqtt --http-addr 127.0.0.1:$http > /dev/null 2>> "$dir/serve.log" & echo $!; }
    server=$(serve)
    sleep 1.5
    "$roomer" simulate fleet --dpus 50 --rooms 10 --rate 2000 --duration 5s --batch 10 --json \
        --mqtt-url mqtt://127.0.0.1:$mqtt > "$dir/report.json" 2> /dev/null &
    fleet=$!
    sleep 2.5
    kill -9 "$server"
    server=$(serve)
    wait "$fleet"
    sleep 2
    acked=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['events'])" "$dir/report.json")
    stored=$(curl -s "127.0.0.1:$http/api/v1/totals" | python3 -c "import json,sys; print(json.load(sys.stdin)['crossings'])")
    echo "--ack $mode: acknowledged $acked, stored $stored, lost $((acked - stored))"
    kill "$server"; wait "$server" 2> /dev/null || true
    rm -rf "$dir"
done
