// Drives a real `mnemo serve` with the official openai package: models, a plain completion, a
// streamed one with usage, a forced tool call with schema-valid arguments, a tool-result round trip,
// and a wrong key. Usage: node openai_client.test.mjs MNEMO_BINARY [MODEL_DIR]
// Exits 77 (skipped) when the openai package is not installed (npm ci --prefix tests/js), and 1 in
// CI (CI=true), where a missing peer is a failure.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, 'node_modules', 'openai'))) {
  const ci = !['', 'false', '0'].includes(process.env.CI ?? '');
  console.log(`${ci ? 'failed' : 'skipped'}: the openai package is missing; run \`npm ci --prefix tests/js\``);
  process.exit(ci ? 1 : 77);
}
const { default: OpenAI } = await import('openai');

const mnemo = process.argv[2];
assert.ok(mnemo, 'usage: node openai_client.test.mjs MNEMO_BINARY [MODEL_DIR]');
const tmp = mkdtempSync(join(tmpdir(), 'mnemo-js-'));
let server;

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather of a city.',
    parameters: {
      type: 'object',
      properties: {
        location: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['location', 'unit'],
      additionalProperties: false,
    },
  },
};

function checkWeatherArgs(text) {
  const args = JSON.parse(text);
  assert.deepEqual(Object.keys(args).sort(), ['location', 'unit']);
  assert.equal(typeof args.location, 'string');
  assert.ok(['celsius', 'fahrenheit'].includes(args.unit));
}

async function startServer(store, model) {
  server = spawn(mnemo, ['serve', '--listen', '127.0.0.1:0', '--store', store, '--model', model], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: server.stdout });
  for await (const line of lines) {
    const m = /^listening on (http:\/\/\S+)$/.exec(line);
    if (m) return m[1];
  }
  throw new Error('mnemo serve exited before listening');
}

async function main() {
  let model = process.argv[3];
  if (!model || !existsSync(join(model, 'tokenizer.json'))) {
    model = join(tmp, 'model');
    execFileSync(mnemo, ['model', 'init', '--preset', 'tiny', '--out', model], { stdio: 'ignore' });
  }
  const store = join(tmp, 'store');
  const key = execFileSync(mnemo, ['keys', 'add', '--tenant', 'js', '--store', store], {
    encoding: 'utf8',
  }).trim();
  assert.match(key, /^mnemo_sk_[0-9a-f]{64}$/);
  const base = await startServer(store, model);
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });

  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  assert.equal(ids.length, 1);
  const id = ids[0];

  const question = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const plain = await client.chat.completions.create({ model: id, messages: question, max_tokens: 8, seed: 1 });
  assert.equal(plain.object, 'chat.completion');
  assert.equal(plain.choices[0].message.role, 'assistant');
  assert.ok(plain.usage.completion_tokens <= 8);
  assert.equal(plain.usage.total_tokens, plain.usage.prompt_tokens + plain.usage.completion_tokens);

  const stream = await client.chat.completions.create({
    model: id, messages: question, max_tokens: 8, seed: 1, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
  }
  assert.deepEqual(usage, plain.usage);
  assert.equal(text, plain.choices[0].message.content ?? '');
  assert.equal(finish, plain.choices[0].finish_reason);

  const forced = await client.chat.completions.create({
    model: id, messages: question, tools: [weather], seed: 2,
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  assert.equal(forced.choices[0].finish_reason, 'tool_calls');
  const message = forced.choices[0].message;
  assert.ok(message.tool_calls.length >= 1);
  const call = message.tool_calls[0];
  assert.match(call.id, /^call_[0-9a-f]+$/);
  assert.equal(call.function.name, 'get_weather');
  for (const c of message.tool_calls) checkWeatherArgs(c.function.arguments);

  const followUp = await client.chat.completions.create({
    model: id, tools: [weather], tool_choice: 'none', max_tokens: 8, seed: 3,
    messages: [...question, message, { role: 'tool', tool_call_id: call.id, content: '21 degrees, sunny' }],
  });
  assert.ok(followUp.usage.prompt_tokens > forced.usage.prompt_tokens);
  assert.ok(!followUp.choices[0].message.tool_calls?.length);

  const intruder = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'mnemo_sk_wrong', maxRetries: 0 });
  await assert.rejects(intruder.models.list(), (e) => e.status === 401);
  console.log('openai client: models, completion, stream, forced call, tool round trip, 401: ok');
}

try {
  await main();
} finally {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  rmSync(tmp, { recursive: true, force: true });
}
