#!/usr/bin/env bash
# The end-to-end demo on the embedded default model (MNEMO_HOME/models/tiny, created on first use: the
# DeepSeek-V4 architecture with synthetic weights and the real V4 tokenizer). It renders a conversation
# with a tool into a V4 prompt and token ids, decodes from the model through the engine, parses a DSML
# tool call the way the agent will, and runs that tool's command in the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
MNEMO=${MNEMO:-build/bin/mnemo}
step() { printf '\n== %s\n' "$*"; }

step "mnemo model info  (the default model; created once under \${MNEMO_HOME:-~/.local/share/mnemo})"
"$MNEMO" model info

MODEL_DIR=$("$MNEMO" model info --json | sed -n 's/^{"source": *"\([^"]*\)".*/\1/p')
MODEL_ARGS=()
[ -n "$MODEL_DIR" ] && MODEL_ARGS=(--model "$MODEL_DIR")

step "mnemo chat render --codec v4  (a conversation with one tool, thinking mode)"
"$MNEMO" chat render --codec v4 "${MODEL_ARGS[@]}" < examples/chat/weather_conversation.jsonl | cut -c1-400
echo "..."

step "mnemo generate  (greedy, 24 tokens; synthetic weights, so the text is noise)"
"$MNEMO" generate --prompt "Persistent memory for agents:" --max-tokens 24

step "mnemo chat parse --codec v4  (a completion that calls the tool)"
"$MNEMO" chat parse --codec v4 --thinking-mode thinking < examples/chat/weather_completion.jsonl

step "mnemo sandbox exec  (the tool's shell command, isolated: no network, no host files, bounded)"
"$MNEMO" sandbox exec --timeout 10s --memory 256M -- /bin/bash -c \
  'echo "weather for Hangzhou: 21C"; id -u; ls / | tr "\n" " "; echo; (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null || echo "network: none"'
