import { InputError, RuntimeFailure } from '../util/errors.js';
import type { Ui } from '../util/ui.js';

/**
 * Picking the TensorFlow.js backend (DESIGN.md, issue 2): `tensorflow` when the user has
 * installed `@tensorflow/tfjs-node-gpu` (CUDA) or `@tensorflow/tfjs-node` (native CPU), else
 * `wasm`, else `cpu`. `--backend` overrides. The native packages are optional: they are loaded
 * with a dynamic import() inside try/catch, and their absence is normal.
 */
export type TfjsBackendName = 'tensorflow' | 'wasm' | 'cpu';

/** The tfjs namespace (the same API whichever package provided it). */
export type Tf = typeof import('@tensorflow/tfjs');

export interface TfjsRuntime {
  tf: Tf;
  /** What was asked for or chosen: tensorflow, wasm or cpu. */
  backend: TfjsBackendName;
  /** What is recorded in outputs: 'tensorflow-cuda', 'tensorflow', 'wasm' or 'cpu'. */
  label: string;
  /** True when the tensorflow backend runs on CUDA (tfjs-node-gpu). */
  cuda: boolean;
}

interface NativeTf {
  tf: Tf;
  cuda: boolean;
}

let nativeProbe: Promise<NativeTf | null> | undefined;

// Held in variables so TypeScript does not try to resolve packages that are normally absent.
const TFJS_NODE_GPU = '@tensorflow/tfjs-node-gpu';
const TFJS_NODE = '@tensorflow/tfjs-node';

/** The native tensorflow binding if one is installed (CUDA build first), else null. Cached. */
export function findNativeTf(ui?: Ui): Promise<NativeTf | null> {
  nativeProbe ??= (async () => {
    for (const [pkg, cuda] of [[TFJS_NODE_GPU, true], [TFJS_NODE, false]] as const) {
      try {
        const mod = (await import(pkg)) as Tf & { default?: Tf };
        const tf = (typeof mod.tensor === 'function' ? mod : mod.default) as Tf;
        ui?.debug(`tfjs: found ${pkg}`);
        return { tf, cuda };
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') {
          // Installed but broken (e.g. a missing libtensorflow): say so, then fall back.
          ui?.warn(`${pkg} is installed but could not be loaded (${(err as Error).message.split('\n')[0]}); using another backend`);
        }
      }
    }
    return null;
  })();
  return nativeProbe;
}

let pure: Promise<Tf> | undefined;

/** @tensorflow/tfjs with the wasm backend registered. */
async function pureTf(): Promise<Tf> {
  pure ??= (async () => {
    const tf = await import('@tensorflow/tfjs');
    try {
      await import('@tensorflow/tfjs-backend-wasm');
    } catch {
      // wasm missing: cpu remains.
    }
    return tf;
  })();
  return pure;
}

async function activate(tf: Tf, name: string): Promise<boolean> {
  if (!(name in tf.engine().registryFactory)) return false;
  try {
    const ok = await tf.setBackend(name);
    await tf.ready();
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/**
 * Make `requested` (or the best available backend) the active tfjs backend. A requested
 * backend that cannot be had is an InputError naming the fix.
 */
export async function selectTfjsBackend(requested?: TfjsBackendName, ui?: Ui): Promise<TfjsRuntime> {
  if (requested === undefined || requested === 'tensorflow') {
    const native = await findNativeTf(ui);
    if (native && (await activate(native.tf, 'tensorflow'))) {
      const label = native.cuda ? 'tensorflow-cuda' : 'tensorflow';
      ui?.debug(`tfjs backend: ${label}`);
      return { tf: native.tf, backend: 'tensorflow', label, cuda: native.cuda };
    }
    if (requested === 'tensorflow') {
      throw new InputError('the tfjs "tensorflow" backend is not installed', {
        expected: `${TFJS_NODE} (CPU) or ${TFJS_NODE_GPU} (CUDA) installed beside bert-probe`,
        found: 'neither package could be loaded',
        fix: `npm install ${TFJS_NODE} (or ${TFJS_NODE_GPU}), or use --backend wasm / --engine onnx`,
      });
    }
  }
  const tf = await pureTf();
  const order: TfjsBackendName[] = requested ? [requested] : ['wasm', 'cpu'];
  for (const name of order) {
    if (await activate(tf, name)) {
      if (name === 'cpu') quietCpuAdvice(tf);
      ui?.debug(`tfjs backend: ${name}`);
      return { tf, backend: name, label: name, cuda: false };
    }
  }
  if (requested) {
    throw new InputError(`the tfjs "${requested}" backend could not be started`, {
      expected: `a working ${requested === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs'} install`,
      found: `registered backends: ${Object.keys(tf.engine().registryFactory).join(', ') || 'none'}`,
      fix: 'reinstall bert-probe (npm ci), or pick another --backend',
    });
  }
  throw new RuntimeFailure('no tfjs backend could be started (tried wasm and cpu)');
}

/**
 * The cpu backend prints a "install tfjs-node" banner on first use in Node. The user chose
 * this backend on purpose (or it is the last resort, already reported with --debug), so the
 * banner is noise on stderr: mark the backend as used. (tfjs-backend-cpu, backend_cpu.ts.)
 */
function quietCpuAdvice(tf: Tf): void {
  const backend = tf.backend() as unknown as { firstUse?: boolean };
  if (typeof backend.firstUse === 'boolean') backend.firstUse = false;
}
