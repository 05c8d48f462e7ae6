/**
 * `npm run bench`: every benchmark, in order. Each entry is one area's bench; add yours as one
 * import and one line in the list.
 */
import { benchEngines } from './engines.js';
import { benchExtract } from './extract.js';
import { benchExtractVsTorch } from './extract-vs-torch.js';
import { benchPrecision } from './precision.js';
import { benchOnnxGraphs } from './onnx-graphs.js';
import { benchStructural } from './structural.js';
import { benchStructuralConcurrency } from './structural-concurrency.js';
import { benchStructuralMemory } from './structural-memory.js';
import { benchMainJob } from './main-job.js';
import { benchParity } from './parity.js';
import { benchCorpus } from './corpus.js';
import { benchAblate } from './ablate.js';
import { benchTrainer } from './trainer.js';
import { benchHeads } from './heads.js';
import { benchStoreRead } from './store-read.js';
import { benchSimilar } from './similar.js';
import { benchLayers } from './layers.js';
import { benchHeadrules } from './headrules.js';

const BENCHES: [string, () => Promise<unknown>][] = [
  ['engines', benchEngines],
  ['extract', benchExtract],
  ['extract-vs-torch', benchExtractVsTorch],
  ['precision', benchPrecision],
  ['onnx-graphs', benchOnnxGraphs],
  ['structural', benchStructural],
  ['structural-concurrency', benchStructuralConcurrency],
  ['structural-memory', benchStructuralMemory],
  ['main-job', benchMainJob],
  ['parity', benchParity],
  ['corpus', benchCorpus],
  ['ablate', benchAblate],
  ['trainer', benchTrainer],
  ['heads', benchHeads],
  ['store-read', benchStoreRead],
  ['similar', benchSimilar],
  ['layers', benchLayers],
  ['headrules', benchHeadrules],
];

const only = process.argv.slice(2);
for (const [name, run] of BENCHES) {
  if (only.length > 0 && !only.includes(name)) continue;
  await run();
}
