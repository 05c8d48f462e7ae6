import type { Command } from 'commander';
import { register as model } from './model.js';
import { register as report } from './report.js';
import { register as compare } from './compare.js';
import { register as embed } from './embed.js';
import { register as extract } from './extract.js';
import { register as structural } from './structural.js';
import { register as heads } from './heads.js';
import { register as relations } from './relations.js';
import { register as data } from './data.js';
import { register as ablate } from './ablate.js';
import { register as layers } from './layers.js';
import { register as maskedLm } from './masked-lm.js';
import { register as similar } from './similar.js';
import { register as senses } from './senses.js';

/**
 * Every command, one file each. Registering is the only thing this list does; the order is
 * the order `bert-probe --help` shows.
 */
export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [model, data, embed, extract, structural, layers, heads, relations, senses, similar, maskedLm, ablate, report, compare];
