import { parentPort, workerData } from 'node:worker_threads';
import { writeFileAtomic } from '../util/atomic.js';
import { buildEncoderGraph, buildMlmGraph } from './onnx-graph.js';
import { randomWeights } from './random.js';
import type { BertConfig, Precision } from './types.js';
import type { WorkerHello } from '../util/worker-client.js';

/**
 * Builds one ONNX graph of a random-init model and writes it to the graph cache, on a throwaway
 * worker thread (onnx-engine.ts). The weights are drawn here from the same recipe as the
 * model's lazy weights (random.ts randomRecipe), so they never enter the main thread; and when
 * this thread exits, everything the build allocated (the weights, their transposed copies, the
 * graph bytes: ~1.2 GB for bert-base) is returned at once, before onnxruntime loads the graph,
 * instead of lying as garbage beside it until V8 collects it (issue 9, peak memory).
 *
 * Protocol: workerData {config, seed, graph, path}; posts {type: 'ready'} once the file is in
 * place, or {type: 'error', message}.
 */
export interface GraphBuildRequest {
  config: BertConfig;
  seed: number;
  graph: { kind: 'encoder'; precision: Precision; attentionOutputs: boolean } | { kind: 'mlm' };
  path: string;
}

const { config, seed, graph, path } = workerData as GraphBuildRequest;
try {
  const weights = randomWeights(config, seed);
  const bytes = graph.kind === 'mlm' ? buildMlmGraph(config, weights) : buildEncoderGraph(config, weights, undefined, { precision: graph.precision, attentionOutputs: graph.attentionOutputs });
  writeFileAtomic(path, bytes);
  parentPort!.postMessage({ type: 'ready' } satisfies WorkerHello);
} catch (err) {
  parentPort!.postMessage({ type: 'error', message: (err as Error).message } satisfies WorkerHello);
}
