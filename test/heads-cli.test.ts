/**
 * Issue 11 end to end through the CLI: `heads` and `relations` on planted attention fed through
 * `--activations` (stores written by this test), and on `ewt` and `ptb` through the data mirror
 * with the fixture model and `--control random`.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Sentence } from '../src/corpus/types.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { mulberry32 } from '../src/util/random.js';
import { fixturesDir, runCli, skipUnless, tempDir } from './helpers.js';
import { plantedRawAttention, plantedSentences, writeAttentionStore } from './heads-planted.js';

const TINY = join(fixturesDir, 'tiny-bert');
const have = existsSync(join(TINY, 'config.json'));
const why = skipUnless(`the fixture model at ${TINY}`, have);

function conllu(sentences: readonly Sentence[]): string {
  return sentences.map((s) => [`# sent_id = ${s.id}`, ...s.words.map((w, i) => [i + 1, w, w, 'NOUN', 'NN', '_', s.heads![i], s.deprels![i], '_', '_'].join('\t')), ''].join('\n')).join('\n') + '\n';
}

function csv(path: string): Record<string, string>[] {
  const [head, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  const cols = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i]!, v])));
}

/** Planted corpora (short words: the fixture's 64 positions) and their stores: heads 2-4 and 3-2 carry every arc. */
async function plantedRun(): Promise<{ dir: string; dataArgs: string[]; activations: string[] }> {
  const dir = tempDir('heads-planted-');
  const tok = await loadTokenizer(TINY);
  const sizes = { train: 60, dev: 20, test: 20 } as const;
  const dataArgs: string[] = [];
  const activations: string[] = [];
  let seed = 100;
  for (const [split, n] of Object.entries(sizes)) {
    const sentences = plantedSentences(n, seed++, 4, 9).map((s) => ({ ...s, words: s.words.map((w) => w.slice(0, 4)), id: `${split}-${s.id}` }));
    const file = join(dir, `${split}.conllu`);
    writeFileSync(file, conllu(sentences));
    const rand = mulberry32(seed++);
    const store = join(dir, `store-${split}`);
    writeAttentionStore(store, { id: file, sha256: '0'.repeat(64), sentences }, tok, { layers: 3, heads: 4, hiddenSize: 32, model: TINY, maxPositions: 64, raw: true, word: true }, (s, l, P, spans) =>
      plantedRawAttention(sentences[s]!, spans, P, 4, l === 2 ? [3] : l === 3 ? [1] : [], rand));
    dataArgs.push(split === 'test' ? '--eval-split' : `--${split}-split`, file);
    activations.push(`${split}=${store}`);
  }
  return { dir, dataArgs: ['--data', join(dir, 'train.conllu'), ...dataArgs], activations };
}

test('heads and relations on planted attention through --activations: the planted heads win, binary ≥ 0.95, Attn-only UAS ≥ 0.9', { skip: why }, async () => {
  const p = await plantedRun();
  const out = join(p.dir, 'heads');
  const r = runCli(['heads', '--model', TINY, ...p.dataArgs, '--activations', ...p.activations, '--parser-epochs', '3', '--min-count', '5', '--out', out, '--json', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.ok(summary.attn_only_uas >= 0.9, `Attn-only UAS ${summary.attn_only_uas}`);
  const rows = csv(join(out, 'results.csv'));
  assert.equal(rows.length, 12);
  for (const row of rows) for (const k of ['attn_cls', 'attn_sep', 'entropy', 'mds_x']) assert.ok(Number.isFinite(Number(row[k])), `${k} of ${row.layer}-${row.head}`);
  const best = csv(join(out, 'best-heads.csv'));
  assert.ok(best.length >= 4);
  for (const b of best) {
    assert.ok(['2-4', '3-2'].includes(b.head!), `best head for ${b.relation}: ${b.head}`);
    assert.equal(b.direction, 'dep->head');
    if (b.relation !== 'all') assert.equal(Number(b.accuracy), 1, b.relation);
  }
  const rel = csv(join(out, 'relations.csv'));
  // 12 heads × 2 directions + 6 offsets per relation.
  assert.equal(rel.filter((x) => x.relation === 'all').length, 30);
  assert.ok(rel.some((x) => x.head === 'offset+1' && x.direction === 'offset'));
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.probe?.fromPieces ?? manifest.options?.fromPieces ?? 'mean', 'mean');
  assert.ok(manifest.files.includes('relations.csv'));
  const preds = readFileSync(join(out, 'predictions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(preds.length, 20);
  assert.ok(preds[0].head_predictions['2-4 dep->head'] && preds[0].attn_only_parser);
  assert.ok(existsSync(join(out, 'report.html')));

  const out2 = join(p.dir, 'relations');
  const r2 = runCli(['relations', '--model', TINY, ...p.dataArgs, '--activations', ...p.activations, '--probe', 'binary', '--out', out2, '--json', '--quiet']);
  assert.equal(r2.status, 0, r2.stderr);
  assert.ok(JSON.parse(r2.stdout).binary_accuracy >= 0.95, r2.stdout);
  const arc = csv(join(out2, 'results.csv')).find((x) => x.label === 'arc')!;
  assert.deepEqual(arc.top_heads!.split(' ').slice(0, 2).sort(), ['2-4', '3-2']);
});

for (const data of ['ewt', 'ptb']) {
  test(`heads and relations end to end on ${data} with the fixture model and --control random`, { skip: why }, () => {
    const dir = tempDir('heads-e2e-');
    const out = join(dir, 'heads');
    const r = runCli(['heads', '--model', TINY, '--data', data, '--limit', '12', '--control', 'random', '--distance-sentences', '4', '--min-count', '1', '--out', out, '--json', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    const rows = csv(join(out, 'results.csv'));
    assert.equal(rows.length, 24, 'fixture and random-init: 12 heads each');
    assert.equal(new Set(rows.map((x) => x.model)).size, 2);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.models.length, 2);
    assert.ok(Number.isFinite(summary.attn_only_uas));
    assert.ok(existsSync(join(out, 'relations.csv')) && existsSync(join(out, 'best-heads.csv')));
    const out2 = join(dir, 'relations');
    const r2 = runCli(['relations', '--model', TINY, '--data', data, '--limit', '12', '--control', 'random', '--l2', '0,0.001', '--max-epochs', '3', '--out', out2, '--json', '--quiet']);
    assert.equal(r2.status, 0, r2.stderr);
    const rows2 = csv(join(out2, 'results.csv'));
    assert.equal(new Set(rows2.map((x) => x.model)).size, 2);
    assert.deepEqual([...new Set(rows2.filter((x) => x.label === 'all').map((x) => x.probe))].sort(), ['binary', 'relation']);
  });
}

test('relations refuses a negative --negatives with exit 2 and names the option', { skip: why }, () => {
  const r = runCli(['relations', '--model', TINY, '--data', 'ewt', '--negatives', '-1']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--negatives/);
});
