import { Command } from 'commander';
import { parameterCount } from '../model/config.js';
import { loadModel } from '../model/load.js';
import { action, addOutputOptions, isOffline, nonNegativeInt, withExample, type OutputOptions } from './common.js';

/** `bert-probe model info MODEL`: what a checkpoint is, where it was found, how it tokenizes. */

const SAMPLE = 'The electrodynamics of naïve cafés, unaffable.';

interface InfoOptions extends OutputOptions {
  revision?: string;
  offline?: boolean;
  seed: number;
  sample?: string;
}

export function register(program: Command): void {
  const model = program.command('model').description('inspect models');
  const info = model
    .command('info')
    .description('config, parameter count, weight format and dtype, tokenizer sample, resolved path')
    .argument('<model>', 'Hugging Face id, local folder, or random[:CONFIG]')
    .option('--revision <rev>', 'Hub revision (branch, tag or commit)')
    .option('--offline', 'never touch the network (HF_HUB_OFFLINE=1 does the same)')
    .option('--seed <n>', 'seed of the random-init control', nonNegativeInt('--seed'), 42)
    .option('--sample <text>', 'text to show the tokenizer on', SAMPLE);
  addOutputOptions(info);
  withExample(info, 'bert-probe model info bert-base-uncased');
  withExample(model, 'bert-probe model info bert-base-uncased');
  info.action(
    action(async (ui, spec: string, opts: InfoOptions) => {
      const m = await loadModel(spec, { revision: opts.revision, offline: isOffline(opts), seed: opts.seed, ui });
      // Counted from what was loaded (a BertForMaskedLM checkpoint has no pooler, say); the tied decoder counts once.
      let encoderParams = 0;
      let mlmParams = 0;
      for (const [name, t] of m.weights) {
        if (name.startsWith('cls.')) mlmParams += t.data.length;
        else encoderParams += t.data.length;
      }
      const enc = m.tokenizer.encodeText(opts.sample ?? SAMPLE);
      const summary = {
        id: m.source.id,
        path: m.source.path,
        revision: m.source.revision ?? null,
        randomInit: m.source.randomInit,
        format: m.source.format,
        dtype: m.source.sourceDtype,
        weightsSha256: m.source.weightsSha256,
        parameters: encoderParams,
        parametersWithMlmHead: m.hasMlmHead ? encoderParams + mlmParams : null,
        parametersFromConfig: parameterCount(m.config, false),
        tensorsLoaded: m.weights.size,
        hasMlmHead: m.hasMlmHead,
        config: m.config,
        tokenizer: { fingerprint: m.tokenizer.fingerprint, vocabSize: m.tokenizer.vocabSize, sample: opts.sample ?? SAMPLE, tokens: enc.tokens, ids: enc.ids },
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        return;
      }
      const c = m.config;
      const lines = [
        `model        ${summary.id}${m.source.randomInit ? '   [random-init control]' : ''}`,
        `path         ${summary.path ?? '(generated in memory)'}${summary.revision ? `  (revision ${summary.revision})` : ''}`,
        `weights      ${summary.format}, ${summary.dtype}, sha256 ${summary.weightsSha256}`,
        `parameters   ${summary.parameters.toLocaleString('en-US')} (BertModel)${summary.parametersWithMlmHead ? `, ${summary.parametersWithMlmHead.toLocaleString('en-US')} with the MLM head` : ', no MLM head'}`,
        `architecture ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ${c.numAttentionHeads} heads, intermediate ${c.intermediateSize}, ${c.maxPositionEmbeddings} positions, vocab ${c.vocabSize}${c.architectures.length ? `  (${c.architectures.join(', ')})` : ''}`,
        `tokenizer    ${m.tokenizer.fingerprint}`,
        `sample       ${summary.tokenizer.sample}`,
        `  tokens     ${enc.tokens.join(' ')}`,
        `  ids        ${enc.ids.join(' ')}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    }),
  );
}
