#!/usr/bin/env bash
# The README's Quick start, run as a new user runs it: clone this repository's committed HEAD into
# an empty temporary folder (nothing beside it, no TRIDENT_FASHION_MNIST), `npm ci`, start the
# server as `npm start` does, then run the commands of the Quick start's second block, read from
# README.md itself, and check that class, objectness and box come back. The server is always
# stopped (trap). `npm test`, the first block's other line, is what .ci/run runs before this.
#
# Two rewrites keep runs on one machine apart, and nothing else is changed: the server listens on
# ports it picks (`npm start -- --http 0 --grpc 0`) and `localhost:8000` becomes its REST port;
# `/tmp/` becomes this run's own folder.
#
# Also checks the `trident` bin through `npx --no-install` in the clone: --help lists the
# commands, and a failing command exits non-zero with its message.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
readme="$repo/README.md"
started=$SECONDS
work="$(mktemp -d "${TMPDIR:-/tmp}/trident-quickstart.XXXXXX")"
clone="$work/trident"
server_pid=

say() { printf 'quickstart: %s\n' "$*"; }
fail() { printf 'quickstart: FAILED: %s\n' "$*" >&2; exit 1; }

stop_server() {
  [[ -n "$server_pid" ]] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$server_pid" 2>/dev/null; then
      say "server did not stop within 10 s of SIGTERM; killing it"
      kill -KILL -- "-$server_pid" 2>/dev/null || true
    fi
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A new user's shell: none of this project's variables.
unset TRIDENT_FASHION_MNIST ONNXRUNTIME_NODE_INSTALL
# `npx trident` must run the clone's own bin; never let npx fetch a registry package of that name.
export npm_config_yes=false

# The commands of the Quick start section's fenced block number $1, continuation lines joined.
quickstart_block() {
  awk -v want="$1" '
    /^## / { section = ($0 == "## Quick start"); next }
    section && /^```/ { if (inside) inside = 0; else { block++; inside = 1 }; next }
    section && inside && block == want { print }
  ' "$readme" | sed -e ':a' -e '/\\$/{N;s/\\\n */ /;ba' -e '}'
}

setup="$(quickstart_block 1 | sed -e 's/ *#.*$//')"
[[ "$setup" == $'npm ci && npm start\nnpm test' ]] ||
  fail "README.md's first Quick start block is no longer 'npm ci && npm start' + 'npm test'; update test/quickstart.sh with it:"$'\n'"$setup"
mapfile -t commands < <(quickstart_block 2)
[[ ${#commands[@]} -eq 2 && "${commands[0]}" == "npx trident data fashionloc "* && "${commands[1]}" == "curl "* ]] ||
  fail "README.md's second Quick start block is no longer one 'npx trident data fashionloc' and one 'curl' line; update test/quickstart.sh with it:"$'\n'"$(printf '%s\n' "${commands[@]}")"

git clone --quiet "$repo" "$clone"
[[ ! -e "$clone/../shared" ]] || fail "$clone/../shared exists"
cd "$clone"
say "clone of $(git rev-parse --short HEAD) in $clone"

say "npm ci"
t=$SECONDS
npm ci --no-audit --no-fund > "$work/npm-ci.log" 2>&1 || { cat "$work/npm-ci.log" >&2; fail "npm ci"; }
say "npm ci took $((SECONDS - t)) s"

say "npm start -- --http 0 --grpc 0"
setsid npm start -- --http 0 --grpc 0 > "$work/server.log" 2>&1 &
server_pid=$!
http=
for _ in $(seq 1200); do
  http="$(sed -n 's/.*"http":\([0-9]*\),.*"msg":"ready".*/\1/p' "$work/server.log")"
  [[ -n "$http" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "the server exited before it was ready"; }
  sleep 0.1
done
[[ -n "$http" ]] || { cat "$work/server.log" >&2; fail "the server was not ready within 120 s"; }
say "server ready on REST port $http"

# `npm ci` compiles nothing (.npmrc runs no scripts); `npm start` has built dist/ by now.
say "npx --no-install trident --help"
help="$(npx --no-install trident --help)" || fail "npx --no-install trident --help exited $?"
for command in export train eval predict serve finetune data bench; do
  grep -Eq "^  $command " <<< "$help" || fail "npx trident --help does not list '$command':"$'\n'"$help"
done
say "a failing command through npx exits non-zero with its message"
if npx --no-install trident predict "$work/no-such-model" "$work/no-such.png" > "$work/fail.out" 2> "$work/fail.err"; then
  fail "npx trident predict on a missing model exited 0"
fi
grep -q "^trident: .*no-such-model" "$work/fail.err" || fail "no 'trident: …' message for a failing command:"$'\n'"$(cat "$work/fail.err")"
if [[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  say "skipped: the missing-training-split message (Debian's dataset-fashion-mnist is installed here)"
else
  say "without the training split, the error says how to get it"
  if npx --no-install trident data fashionloc --out "$work/never" --count 1 --split train > /dev/null 2> "$work/train.err"; then
    fail "data fashionloc --split train succeeded without the training split"
  fi
  grep -q "npx trident data download fashion-mnist" "$work/train.err" || fail "the missing-split error does not name the download command:"$'\n'"$(cat "$work/train.err")"
fi

outputs=()
for command in "${commands[@]}"; do
  command="${command//localhost:8000/localhost:$http}"
  command="${command//\/tmp\//$work/}"
  say "\$ $command"
  output="$(bash -c "$command")" || fail "exited $?: $command"
  printf '%s\n' "$output"
  outputs+=("$output")
done

samples="$work/samples"
[[ "$(find "$samples/images" -name '*.png' | wc -l)" -eq 4 && -s "$samples/annotations.jsonl" ]] || fail "data fashionloc did not write 4 PNGs and annotations.jsonl into $samples"
node - "${outputs[1]}" "$clone/models/fashionloc/3/manifest.json" "$samples/annotations.jsonl" <<'EOF' || fail "the /predict answer lacks class, objectness or box"
const fs = require('node:fs');
const [answer, manifestFile, annotations] = process.argv.slice(2);
const labels = JSON.parse(fs.readFileSync(manifestFile, 'utf8')).labels;
// One image in, one prediction out, with the model's name and version.
const p = JSON.parse(answer);
const unit = (x) => typeof x === 'number' && x >= 0 && x <= 1;
const problems = [];
if (p.model_name !== 'fashionloc' || p.model_version !== '3') problems.push(`model ${p.model_name} version ${p.model_version}`);
if (!p || !labels.includes(p.class?.label) || !unit(p.class.score)) problems.push(`class: ${JSON.stringify(p?.class)}`);
if (!p || typeof p.object?.present !== 'boolean' || !unit(p.object.score)) problems.push(`objectness: ${JSON.stringify(p?.object)}`);
const b = p.box ?? {};
if (!(0 <= b.x1 && b.x1 <= b.x2 && b.x2 <= p.image.width && 0 <= b.y1 && b.y1 <= b.y2 && b.y2 <= p.image.height && unit(b.normalised?.x1) && unit(b.normalised?.y2))) problems.push(`box: ${JSON.stringify(b)}`);
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
const truth = JSON.parse(fs.readFileSync(annotations, 'utf8').split('\n')[0]);
console.log(`quickstart: answer: ${p.class.label} (${p.class.score.toFixed(3)}), object ${p.object.score.toFixed(3)}, box [${b.x1}, ${b.y1}, ${b.x2}, ${b.y2}]; sample's truth: ${truth.label ?? 'no object'} ${JSON.stringify(truth.box)}`);
EOF

stop_server
say "passed in $((SECONDS - started)) s"
