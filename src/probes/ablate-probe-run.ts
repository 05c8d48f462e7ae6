import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sentence } from '../corpus/types.js';
import { poolWords } from '../extract/align.js';
import { forwardSentences } from '../extract/forward.js';
import { readSafetensors } from '../model/safetensors.js';
import type { Engine, LoadedModel } from '../model/types.js';
import { InputError } from '../util/errors.js';
import { parseLayerName } from '../util/names.js';
import { goldSentence, scoreSplit, type GoldSentence } from './structural-eval.js';

/**
 * A saved probe re-scored with heads masked (issue 12, `--probe-run DIR`): the structural
 * distance probe of a `bert-probe structural` run, at the layer where it scored the best UUAS
 * (its summary.json), read from `<run>/probes/index.json` and the unit's safetensors file
 * (`distance.proj` [hidden, rank]; the runner's ProbeSaver writes them). The metric is UUAS
 * on the eval split's trees, with the words pooled from their pieces by mean, as the run's
 * activation store does (src/extract/pipeline.ts default pooling).
 */
export interface SavedProbe {
  dir: string;
  family: string;
  /** Model label in the run (rows, probes/<label>/). */
  model: string;
  layer: number;
  unit: string;
  /** [hidden, rank], row-major. */
  proj: Float32Array;
  hidden: number;
  rank: number;
  /** UUAS the run reported at that layer. */
  uuas: number;
  data: string;
  weightsSha256: string | null;
  seed: number;
}

interface IndexUnit {
  model: string;
  unit: string;
  label: string;
  layers: number[];
  seed: number;
  file: string;
  params: { name: string; shape: number[] }[];
}

function readJson(file: string, what: string): unknown {
  if (!existsSync(file)) {
    throw new InputError(`--probe-run: ${what} not found`, { file, expected: 'the results folder of a probe run (bert-probe structural writes probes/index.json and the trained probes beside results.csv)', found: 'no such file', fix: 'pass the folder a `bert-probe structural` run printed as results:' });
  }
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError(`--probe-run: ${what} is not JSON`, { file, expected: 'a JSON file', found: (err as Error).message, fix: 'rerun the probe; do not edit its results folder' });
  }
}

/** The saved distance probe of `label` (default: the run's main model) at its best-UUAS layer. */
export function readProbeRun(dir: string, label?: string): SavedProbe {
  const index = readJson(join(dir, 'probes', 'index.json'), 'probes/index.json') as { family?: string; data?: string; seeds?: number[]; units?: IndexUnit[] };
  if (index.family !== 'structural') {
    throw new InputError('--probe-run: only structural probe runs can be re-scored with heads masked', {
      file: join(dir, 'probes', 'index.json'),
      expected: 'family "structural" (UUAS of the distance probe at its best layer)',
      found: `family ${JSON.stringify(index.family)}`,
      fix: 'run bert-probe structural --probe distance first, or ablate against the masked-LM loss (no --probe-run)',
    });
  }
  const summary = readJson(join(dir, 'summary.json'), 'summary.json') as { model?: string; best?: Record<string, Record<string, { layer: string; value: number } | null>> };
  const manifest = readJson(join(dir, 'manifest.json'), 'manifest.json') as { model?: { weightsSha256?: string }; control?: { weightsSha256?: string } };
  const model = label ?? summary.model ?? '';
  const best = summary.best?.[model]?.uuas;
  if (!best) {
    throw new InputError(`--probe-run: the run has no distance-probe UUAS for ${model}`, { file: join(dir, 'summary.json'), expected: `best.${model}.uuas`, found: `models ${Object.keys(summary.best ?? {}).join(', ') || 'none'}`, fix: 'use a run trained with --probe distance or both' });
  }
  const seed = index.seeds?.[0];
  const unit = index.units?.find((u) => u.model === model && u.label === best.layer && (seed === undefined || u.seed === seed) && u.params.some((p) => p.name === 'distance.proj'));
  if (!unit) throw new InputError(`--probe-run: no saved distance probe for ${model} at ${best.layer}`, { file: join(dir, 'probes', 'index.json'), expected: `a unit ${best.layer} of ${model} with distance.proj`, found: `${index.units?.length ?? 0} units`, fix: 'rerun the structural probe with the current bert-probe (it saves every trained probe)' });
  const file = join(dir, 'probes', unit.file);
  const t = readSafetensors(file).tensors.get('distance.proj');
  if (!t || t.shape.length !== 2) throw new InputError('--probe-run: distance.proj missing or not a matrix', { file, expected: 'distance.proj [hidden, rank]', found: t ? `[${t.shape.join(', ')}]` : 'nothing', fix: 'rerun the structural probe' });
  const isControl = model.startsWith('random-init');
  return {
    dir,
    family: index.family,
    model,
    layer: parseLayerName(best.layer),
    unit: best.layer,
    proj: t.data,
    hidden: t.shape[0]!,
    rank: t.shape[1]!,
    uuas: best.value,
    data: index.data ?? '',
    weightsSha256: (isControl ? manifest.control?.weightsSha256 : manifest.model?.weightsSha256) ?? null,
    seed: unit.seed,
  };
}

/** UUAS of the saved probe on `sentences` (with trees) with the heads of `mask` masked. */
export class ProbeUuas {
  private readonly gold: GoldSentence[];
  private readonly encodings;

  constructor(
    private readonly engine: Engine,
    private readonly model: LoadedModel,
    private readonly probe: SavedProbe,
    private readonly sentences: readonly Sentence[],
    private readonly batchSize: number,
  ) {
    if (probe.hidden !== model.config.hiddenSize) {
      throw new InputError('--probe-run: the saved probe does not fit the model', { file: probe.dir, expected: `a probe over ${model.config.hiddenSize}-d vectors`, found: `${probe.hidden}-d`, fix: 'ablate the model the probe was trained on' });
    }
    this.gold = sentences.map(goldSentence);
    this.encodings = sentences.map((s) => model.tokenizer.encodeWords(s.words));
  }

  async evaluate(mask: Float32Array): Promise<number> {
    const H = this.model.config.hiddenSize;
    const { proj, rank, layer } = this.probe;
    const distances: Float64Array[] = new Array(this.sentences.length);
    await forwardSentences(this.engine, this.encodings, {
      hiddenStates: [layer],
      attentions: [],
      batchSize: this.batchSize,
      padId: this.model.tokenizer.padId,
      maxPositions: this.model.config.maxPositionEmbeddings,
      headMask: mask,
      onSentence: (r) => {
        const spans = this.encodings[r.index]!.wordSpans;
        const n = spans.length;
        const words = new Float32Array(n * H);
        poolWords(r.states.get(layer)!, H, spans, 'mean', words);
        // t = h · proj; distance ‖t_i − t_j‖² (Hewitt & Manning 2019 eq. 1, B = projᵀ).
        const t = new Float64Array(n * rank);
        for (let i = 0; i < n; i++) for (let h = 0; h < H; h++) {
          const v = words[i * H + h]!;
          if (v !== 0) for (let k = 0; k < rank; k++) t[i * rank + k]! += v * proj[h * rank + k]!;
        }
        const d = new Float64Array(n * n);
        for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
          let s = 0;
          for (let k = 0; k < rank; k++) s += (t[i * rank + k]! - t[j * rank + k]!) ** 2;
          d[i * n + j] = d[j * n + i] = s;
        }
        distances[r.index] = d;
      },
    });
    const uuas = scoreSplit(this.gold, distances, undefined).scores.uuas;
    return uuas ?? NaN;
  }
}
