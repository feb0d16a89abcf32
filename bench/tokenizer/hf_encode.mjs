// hf_encode.mjs CORPUS TOKENIZER_JSON OUT_IDS [REPEAT]: the HF tokenizers peer of `mnemo bench tokenizer`.
// Encodes every document of CORPUS (JSON lines {"text": ...}) with HF tokenizers on one thread, no
// special tokens added; times only the encoding loop (best of REPEAT passes, default 1, after one
// warm-up pass); writes the ids of the last pass to OUT_IDS and prints one JSON line
// {impl, version, bytes, docs, tokens, seconds, passes} on stdout.
//
// OUT_IDS format, per document in corpus order: int32 LE count, then count int32 LE ids.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';

// Before the binding loads: rayon reads these once, at its first use.
process.env.RAYON_NUM_THREADS = '1';
process.env.RAYON_RS_NUM_CPUS = '1';
process.env.TOKENIZERS_PARALLELISM = 'false';

const [corpusPath, tokenizerPath, outPath, repeatArg] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: node hf_encode.mjs CORPUS TOKENIZER_JSON OUT_IDS [REPEAT]');
  process.exit(2);
}
const repeat = Math.max(1, Number.parseInt(repeatArg ?? '1', 10) || 1);

const require = createRequire(import.meta.url);
const { Tokenizer } = require('tokenizers');
const version = require('tokenizers/package.json').version;

const texts = [];
let bytes = 0;
readFileSync(corpusPath, 'utf8').split('\n').forEach((line, i) => {
  if (line.trim() === '') return;
  let doc;
  try {
    doc = JSON.parse(line);
  } catch (e) {
    console.error(`hf_encode: ${corpusPath}:${i + 1}: not JSON: ${e.message}`);
    process.exit(1);
  }
  if (typeof doc.text !== 'string') {
    console.error(`hf_encode: ${corpusPath}:${i + 1}: no string field "text"`);
    process.exit(1);
  }
  texts.push(doc.text);
  bytes += Buffer.byteLength(doc.text, 'utf8');
});

const tokenizer = Tokenizer.fromFile(tokenizerPath);
const options = { addSpecialTokens: false };

// encode() is asynchronous (a libuv pool task); awaiting each call keeps exactly one encoding running.
async function encodeAll() {
  const encodings = new Array(texts.length);
  for (let i = 0; i < texts.length; i++) encodings[i] = await tokenizer.encode(texts[i], null, options);
  return encodings;
}

await encodeAll();
let best = Infinity;
let encodings;
for (let pass = 0; pass < repeat; pass++) {
  encodings = null;
  const start = process.hrtime.bigint();
  encodings = await encodeAll();
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}

const ids = encodings.map((e) => e.getIds());
let tokens = 0;
for (const docIds of ids) tokens += docIds.length;
const out = new Int32Array(ids.length + tokens);
let at = 0;
for (const docIds of ids) {
  out[at++] = docIds.length;
  out.set(docIds, at);
  at += docIds.length;
}
const buffer = Buffer.from(out.buffer);
// Int32Array is host-endian; the file is little-endian.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) buffer.swap32();
writeFileSync(outPath, buffer);

console.log(JSON.stringify({ impl: 'hf-tokenizers', version, bytes, docs: texts.length, tokens, seconds: best,
  passes: repeat }));
