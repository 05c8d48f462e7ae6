import { InputError } from '../util/errors.js';
import type { Ui } from '../util/ui.js';
import { TfjsEngine } from './bert-tfjs.js';
import { OnnxEngine, onnxAvailable } from './onnx-engine.js';
import { findNativeTf, selectTfjsBackend, type TfjsBackendName } from './tfjs-backend.js';
import type { Engine, LoadedModel, Precision } from './types.js';

export interface CreateEngineOptions {
  engine?: 'auto' | 'tfjs' | 'onnx';
  backend?: TfjsBackendName;
  device?: 'cpu' | 'cuda';
  /** fp32 (default) or int8 (onnx engine only). */
  precision?: Precision;
  ui?: Ui;
}

/**
 * The one place an Engine is made (DESIGN.md). `--engine auto` picks tfjs on a CUDA
 * `tensorflow` backend if present, else onnx (with `--device`), else tfjs on wasm (or cpu).
 * A `--backend` only applies to tfjs, so with `auto` it selects tfjs.
 */
export async function createEngine(model: LoadedModel, opts: CreateEngineOptions = {}): Promise<Engine> {
  const ui = opts.ui;
  const kind = opts.engine ?? 'auto';
  const device = opts.device ?? 'cpu';
  const precision = opts.precision ?? 'fp32';
  if (precision !== 'fp32' && (kind === 'tfjs' || opts.backend)) {
    throw new InputError(`--precision ${precision} is an onnx engine mode`, {
      expected: `--engine onnx (or auto) with --precision ${precision}`,
      found: kind === 'tfjs' ? '--engine tfjs' : `--backend ${opts.backend}`,
      fix: `drop --engine tfjs/--backend, or use --precision fp32`,
    });
  }
  let engine: Engine;
  if (kind === 'onnx') {
    if (opts.backend) ui?.warn(`--backend ${opts.backend} applies to the tfjs engine only; ignored with --engine onnx`);
    engine = await OnnxEngine.create(model, { device, precision, ui });
  } else if (kind === 'tfjs') {
    engine = await tfjsEngine(model, opts.backend, device, ui);
  } else if (opts.backend) {
    engine = await tfjsEngine(model, opts.backend, device, ui);
  } else {
    const native = await findNativeTf(ui);
    if (native?.cuda && precision === 'fp32') engine = await tfjsEngine(model, 'tensorflow', device, ui);
    else if (await onnxAvailable()) engine = await OnnxEngine.create(model, { device, precision, ui });
    else {
      if (precision !== 'fp32') throw new InputError(`--precision ${precision} needs onnxruntime-node, which could not be loaded`, { expected: 'onnxruntime-node installed', found: 'no onnxruntime-node', fix: 'npm install onnxruntime-node, or use --precision fp32' });
      if (device === 'cuda') throw noCuda('neither @tensorflow/tfjs-node-gpu nor onnxruntime-node could be loaded');
      engine = await tfjsEngine(model, undefined, device, ui);
    }
  }
  ui?.debug(`engine: ${engine.kind} (${engine.backend})`);
  return engine;
}

async function tfjsEngine(model: LoadedModel, backend: TfjsBackendName | undefined, device: 'cpu' | 'cuda', ui?: Ui): Promise<Engine> {
  const runtime = await selectTfjsBackend(backend, ui);
  if (device === 'cuda' && !runtime.cuda) throw noCuda(`the tfjs engine runs on ${runtime.label}`);
  return new TfjsEngine(model, runtime);
}

function noCuda(found: string): InputError {
  return new InputError('--device cuda: no CUDA engine is installed', {
    expected: '@tensorflow/tfjs-node-gpu, or onnxruntime-node with its CUDA provider (--engine onnx)',
    found,
    fix: 'install one of them, or use --device cpu',
  });
}
