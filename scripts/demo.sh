#!/usr/bin/env bash
# The end-to-end demo on the embedded default model (MNEMO_HOME/models/tiny, created on first use: the
# DeepSeek-V4 architecture with synthetic weights and the real V4 tokenizer). It runs an agent job
# (examples/jobs/hello.yaml: a forced shell call per step, in the sandbox), shows the job's durable
# trace, then kills a longer job (examples/jobs/resume-demo.yaml) with SIGKILL mid-run and resumes it
# from its last committed step.
set -euo pipefail
cd "$(dirname "$0")/.."
MNEMO=${MNEMO:-build/bin/mnemo}
step() { printf '\n== %s\n' "$*"; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STORE="$WORK/store"
mkdir -p "$WORK/ws"
printf 'first note\n' > "$WORK/ws/notes.txt"

step "mnemo model info  (the default model; created once under \${MNEMO_HOME:-~/.local/share/mnemo})"
"$MNEMO" model info

step "mnemo run examples/jobs/hello.yaml  (random weights: the text is noise, the calls are schema-valid)"
"$MNEMO" run examples/jobs/hello.yaml --id hello-demo --store "$STORE" --workspace "$WORK/ws"

step "mnemo jobs show hello-demo"
"$MNEMO" jobs show hello-demo --store "$STORE"

step "mnemo jobs logs hello-demo  (the durable events, token ids left out)"
"$MNEMO" jobs logs hello-demo --store "$STORE" | cut -c1-160

step "mnemo run examples/jobs/resume-demo.yaml, killed with SIGKILL after 5 s"
"$MNEMO" run examples/jobs/resume-demo.yaml --id resume-demo --store "$STORE" --workspace "$WORK/ws" -q &
PID=$!
sleep 5
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
"$MNEMO" jobs show resume-demo --store "$STORE" | head -4

step "mnemo resume resume-demo  (from the last committed step's KV snapshot: no prefill)"
"$MNEMO" resume resume-demo --store "$STORE" 2>&1 | tail -4
"$MNEMO" jobs show resume-demo --store "$STORE" | head -4
