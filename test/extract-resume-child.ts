/**
 * Child process for extract-resume.test.ts (not a test itself): extracts the fake corpus into
 * argv[2], slowly when argv[3] gives a per-batch delay in ms, and prints the report as JSON.
 */
import { extractWithReport } from '../src/extract/pipeline.js';
import { FakeEngine, fakeCorpus, fakeModel } from './extract-fakes.js';

export const RESUME_SETUP = { sentences: 40, shardSize: 4, batchSize: 2, request: { layers: [0, 1, 2, 3], attentionLayers: [1, 2] } } as const;

export async function runResumeExtraction(dir: string, delayMs: number) {
  const model = fakeModel();
  return extractWithReport({
    model, engine: new FakeEngine(model.config, delayMs), corpus: fakeCorpus(RESUME_SETUP.sentences),
    request: { layers: [...RESUME_SETUP.request.layers], attentionLayers: [...RESUME_SETUP.request.attentionLayers] },
    batchSize: RESUME_SETUP.batchSize, shardSize: RESUME_SETUP.shardSize, storeDir: dir,
  });
}

if (process.argv[1] && /extract-resume-child\.(ts|js)$/.test(process.argv[1])) {
  const { report } = await runResumeExtraction(process.argv[2]!, Number(process.argv[3] ?? 0));
  process.stdout.write(JSON.stringify(report) + '\n');
}
