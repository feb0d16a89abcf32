#!/usr/bin/env bash
# The best end-to-end demo that exists today: a V4 conversation with a tool, rendered by the chat
# codec and tokenized with the DeepSeek tokenizer (V4 special tokens added), then a model completion
# with a DSML tool call parsed back into an OpenAI-style message.
set -euo pipefail
cd "$(dirname "$0")/.."
MNEMO=${MNEMO:-build/bin/mnemo}
TOKENIZER=third_party/deepseek_v3_tokenizer/tokenizer.json

echo "== mnemo chat render --codec v4 (a conversation with one tool, thinking mode)"
"$MNEMO" chat render --codec v4 --tokenizer "$TOKENIZER" < examples/chat/weather_conversation.jsonl

echo
echo "== mnemo chat parse --codec v4 (a completion that calls the tool)"
"$MNEMO" chat parse --codec v4 --thinking-mode thinking < examples/chat/weather_completion.jsonl

echo
echo "== mnemo tokenize, then --decode back"
echo '{"text": "Persistent memory for agents: 数字 12345, emoji 🚀"}' | "$MNEMO" tokenize --tokenizer "$TOKENIZER" |
  tee /dev/stderr | "$MNEMO" tokenize --decode --tokenizer "$TOKENIZER"
