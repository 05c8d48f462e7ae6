import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTempName } from '../src/util/atomic.js';
import { runResumeExtraction, RESUME_SETUP } from './extract-resume-child.js';
import { tempDir } from './helpers.js';

// Run the child the way this test runs: compiled (dist/test/*.js) or through tsx (test/*.ts).
const self = fileURLToPath(import.meta.url);
const childFile = self.replace(/extract-resume\.test\.(ts|js)$/, 'extract-resume-child.$1');
const childArgs = (dir: string, delay: number): string[] => [...(self.endsWith('.ts') ? ['--import', 'tsx'] : []), childFile, dir, String(delay)];

function listFiles(dir: string, sub = ''): string[] {
  return readdirSync(join(dir, sub), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(dir, join(sub, e.name)) : [join(sub, e.name)])).sort();
}

const shardsOf = (dir: string, name: string): number => (existsSync(join(dir, name)) ? readdirSync(join(dir, name)).filter((f) => f.endsWith('.safetensors')).length : 0);

test('an extraction killed with SIGKILL resumes at the first missing shard, to a store byte-equal to an uninterrupted one', async () => {
  const totalShards = RESUME_SETUP.sentences / RESUME_SETUP.shardSize;
  const killed = join(tempDir(), 'store');
  const child = spawn(process.execPath, childArgs(killed, 40), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<NodeJS.Signals | number | null>((res) => child.on('exit', (code, sig) => res(sig ?? code)));
  // wait until some (not all) shards of the last-written layer exist, then kill hard
  const deadline = Date.now() + 60_000;
  while (shardsOf(killed, 'layer.3') < 3) {
    if (Date.now() > deadline || child.exitCode !== null) assert.fail(`child did not write shards in time (exit ${child.exitCode}): ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const before = shardsOf(killed, 'layer.3');
  assert.ok(before >= 3 && before < totalShards, `killed mid-way (${before}/${totalShards} shards)`);

  // resume in a fresh process
  const resumed = spawnSync(process.execPath, childArgs(killed, 0), { encoding: 'utf8' });
  assert.equal(resumed.status, 0, resumed.stderr);
  const report = JSON.parse(resumed.stdout);
  assert.ok(report.computedSentences <= RESUME_SETUP.sentences - before * RESUME_SETUP.shardSize, `resume recomputed only missing shards (${report.computedSentences} sentences)`);
  assert.ok(report.shardsReused >= before, 'finished shards were reused');

  // uninterrupted reference, in this process
  const clean = join(tempDir(), 'store');
  await runResumeExtraction(clean, 0);
  const files = listFiles(clean);
  assert.deepEqual(listFiles(killed).filter((f) => !isTempName(f.split('/').pop()!)), files);
  assert.ok(!listFiles(killed).some((f) => isTempName(f.split('/').pop()!)), 'temporary files of the killed run were removed');
  assert.equal(files.filter((f) => f.endsWith('.safetensors')).length, totalShards * 6);
  for (const f of files) {
    if (f === 'index.json') {
      const strip = (p: string) => ({ ...JSON.parse(readFileSync(p, 'utf8')), createdAt: 0, updatedAt: 0 });
      assert.deepEqual(strip(join(killed, f)), strip(join(clean, f)));
    } else {
      assert.ok(readFileSync(join(killed, f)).equals(readFileSync(join(clean, f))), `${f} byte-equal`);
    }
  }
});
