import type { PNode, ParsedTree } from './ptb.js';

/**
 * Constituency → dependency conversion by head percolation, two schemes.
 *
 * `collins`: Yamada & Matsumoto's (2003) head rules applied exactly as their converter ptbconv 3.0
 * applies them (table, search procedure and tree cleanup cited line by line at PTBCONV_SRC below):
 * Collins' (1999, Appendix A) table with Y&M's directions and without Collins' special NP and
 * coordination rules; the head table Penn2Malt distributes (Nivre,
 * https://cl.lingfil.uu.se/~nivre/research/Penn2Malt.html) and the conversion behind NLTK's
 * dependency_treebank. Function words head their phrases: modals and auxiliaries head the VP,
 * prepositions head PPs, complementizers head SBAR, possessive 's heads the possessor NP; the
 * rightmost noun (or POS) heads an NP, and in a coordination the last conjunct of an NP or S, the
 * first of a VP. Labels are Penn2Malt's / CoNLL-2007 English set: SBJ OBJ PRD NMOD VMOD AMOD PMOD
 * VC SBAR P ROOT DEP.
 *
 * `stanford`: starts from the Collins (1999) table as CoreNLP's CollinsHeadFinder encodes it;
 * content-word heads as in Stanford basic dependencies (de Marneffe, MacCartney &
 * Manning 2006; de Marneffe & Manning, "Stanford typed dependencies manual", 2008), which
 * Hewitt & Manning (2019) used: CoreNLP's SemanticHeadFinder changes to the Collins table, i.e.
 * auxiliaries and modals attach to the main verb (aux/auxpass), a copula attaches to its
 * nominal or adjectival predicate (cop), complementizers attach to the clause's verb (mark),
 * possessive 's attaches to the possessor (possessive); prepositions still head their objects
 * (prep/pobj), as in basic (uncollapsed) SD. Labels are a subset of SD basic relations, derived
 * from categories, function tags and POS: nsubj nsubjpass csubj csubjpass dobj prep pobj pcomp det amod nn num poss
 * possessive aux auxpass cop advmod neg cc conj mark ccomp advcl rcmod prt tmod npadvmod punct
 * root dep.
 *
 * Both give one root and no cycles by construction (each constituent has exactly one head child).
 * Punctuation never heads a phrase that has a non-punctuation child.
 */
export type HeadScheme = 'stanford' | 'collins';

type Dir = 'left' | 'right' | 'leftdis' | 'rightdis';
type Rule = [Dir, ...string[]];

// `collins` is Yamada & Matsumoto's converter ptbconv 3.0 (Yamada & Matsumoto 2003, "Statistical
// dependency analysis with support vector machines", IWPT; the head table Penn2Malt distributes),
// reproduced rule by rule from its source, kamigaito/ptbconv-3.0 at commit
// d25f298dc0d08023b2529c9df8f87662f420abd5 (a copy of http://www.jaist.ac.jp/~h-yamada/software/ptbconv-3.0.tar.gz):
//   lib/ruby/natural_language/corpus/penn_treebank/phrasal_category.rb — SEARCH_DIRECTION and
//     PRIORITY_LIST of each category (below, one line each: category, r = RIGHT / l = LEFT, then the
//     priority list; `A|B` is one priority that matches either, as ptbconv's NP and NAC lists do:
//     /^(POS|NN|NNP|NNPS|NNS)$/ is a single regexp, so the rightmost of those heads the NP, e.g.
//     "interest rates" → rates), and PhrasalCategory#find_head_index (headChildPtbconv below);
//   lib/ruby/natural_language/corpus/penn_treebank/pos.rb — which tags are punctuation
//     (`` '' , . :) and parentheses (-LRB- -RRB-);
//   lib/ruby/natural_language/corpus/penn_treebank/sparser.rb — -NONE- leaves dropped while reading,
//     phrases left without children dropped, labels cut at the first - or = (NP-SBJ-1 → NP), a
//     trailing number stripped (S1 → S) and the first of alternatives kept (ADVP|PRT → ADVP);
//   ptbconv + common.rb — unary X→X chains merged (no effect on heads), heads found bottom-up,
//     each word attached to the head word of the lowest phrase it does not head (to_dependency).
// NLTK's dependency_treebank (wsj_0001.dp … wsj_0199.dp) is this program's output on the same 10%
// sample (nltk ptbconv.py `convert_all` runs it over the 199 files), which is what
// test/corpus-headrules-agreement.test.ts and `npm run bench headrules` measure against.
// ptbconv's table is Collins (1999) Appendix A with the search directions of Y&M, TO dropped from
// VP (to attaches to its verb), POS first in NP, and no special NP or coordination rules.
const PTBCONV_SRC = `
S r TO IN VP S SBAR ADJP UCP NP
SBAR r WHNP WHPP WHADVP WHADJP IN DT S SQ SINV SBAR FRAG
SBARQ r SQ S SINV SBARQ FRAG
SQ r VBZ VBD VBP VB MD VP SQ
SINV r VBZ VBD VBP VB MD VP S SINV ADJP NP
ADJP r NNS QP NN $ ADVP JJ VBN VBG ADJP JJR NP JJS DT FW RBR RBS SBAR RB
ADVP l RB RBR RBS FW ADVP TO CD JJR JJ IN NP JJS NN
NP r POS|NN|NNP|NNPS|NNS NX JJR CD JJ JJS RB QP NP
PP l IN TO VBG VBN RP FW
QP r $ IN NNS NN JJ RB DT CD QP JJR JJS
VP l VBD VBN MD VBZ VB VBG VBP VP ADJP NN NNS NP
WHNP r WDT WP WP$ WHADJP WHPP WHNP
WHPP l IN TO FW
CONJP l CC RB IN
FRAG l
INTJ r
LST l LS :
NAC r NN|NNP|NNPS|NNS NP NAC EX $ CD QP PRP VBG JJ JJS JJR ADJP FW
NX r POS|NN|NNP|NNPS|NNS NX JJR CD JJ JJS RB QP NP
PRN r
PRT l RP
RRC l VP NP ADVP ADJP PP
UCP l
X r
WHADJP r CC WRB JJ ADJP
WHADVP l CC WRB
`;
interface PtbconvRule { fromRight: boolean; priorities: Set<string>[] }
const PTBCONV: Record<string, PtbconvRule> = Object.fromEntries(
  PTBCONV_SRC.trim()
    .split('\n')
    .map((l) => l.split(' '))
    .map(([cat, d, ...prio]) => [cat!, { fromRight: d === 'r', priorities: prio.map((p) => new Set(p.split('|'))) }]),
);
// ptbconv pos.rb: Punctuation (skipped while matching priorities) and OP/CP (parentheses, skipped
// with punctuation by the fallback).
const PTBCONV_PUNCT = new Set(['``', "''", ',', '.', ':']);
const PTBCONV_PAREN = new Set(['-LRB-', '-RRB-']);

/**
 * ptbconv's PhrasalCategory#find_head_index: for each priority in order, scan the children in the
 * category's direction (punctuation words skipped) and take the first that matches. If none does:
 * the first child in that direction if it is a phrase, else the first phrase or non-punctuation,
 * non-parenthesis word in that direction, else the first child. A category ptbconv does not define
 * (never in the PTB) falls back the same way, scanning from the left.
 */
function headChildPtbconv(n: PNode): number {
  const kids = n.children;
  const rule = PTBCONV[n.cat] ?? { fromRight: false, priorities: [] };
  const order = rule.fromRight ? [...kids.keys()].reverse() : [...kids.keys()];
  for (const prio of rule.priorities) {
    for (const i of order) {
      const k = kids[i]!;
      if (k.word !== undefined && PTBCONV_PUNCT.has(k.cat)) continue;
      if (prio.has(k.cat)) return i;
    }
  }
  const s = order[0]!;
  if (kids[s]!.word === undefined) return s;
  for (const i of order) {
    const k = kids[i]!;
    if (k.word === undefined || !(PTBCONV_PUNCT.has(k.cat) || PTBCONV_PAREN.has(k.cat))) return i;
  }
  return s;
}

// Collins (1999) Appendix A. "left" = for each category in priority order, scan children left→right;
// "right" = scan right→left; "…dis" = scan children once, first child in the set (CoreNLP's encoding).
const COLLINS_1999: Record<string, Rule[]> = {
  ADJP: [['left', 'NNS', 'QP', 'NN', '$', 'ADVP', 'JJ', 'VBN', 'VBG', 'ADJP', 'JJR', 'NP', 'JJS', 'DT', 'FW', 'RBR', 'RBS', 'SBAR', 'RB']],
  ADVP: [['right', 'RB', 'RBR', 'RBS', 'FW', 'ADVP', 'TO', 'CD', 'JJR', 'JJ', 'IN', 'NP', 'JJS', 'NN']],
  CONJP: [['right', 'CC', 'RB', 'IN']],
  FRAG: [['right']],
  INTJ: [['left']],
  LST: [['right', 'LS', ':']],
  NAC: [['left', 'NN', 'NNS', 'NNP', 'NNPS', 'NP', 'NAC', 'EX', '$', 'CD', 'QP', 'PRP', 'VBG', 'JJ', 'JJS', 'JJR', 'ADJP', 'FW']],
  NX: [['left']],
  PP: [['right', 'IN', 'TO', 'VBG', 'VBN', 'RP', 'FW']],
  PRN: [['left']],
  PRT: [['right', 'RP']],
  QP: [['left', '$', 'IN', 'NNS', 'NN', 'JJ', 'RB', 'DT', 'CD', 'NCD', 'QP', 'JJR', 'JJS']],
  RRC: [['right', 'VP', 'NP', 'ADVP', 'ADJP', 'PP']],
  S: [['left', 'TO', 'IN', 'VP', 'S', 'SBAR', 'ADJP', 'UCP', 'NP']],
  SBAR: [['left', 'WHNP', 'WHPP', 'WHADVP', 'WHADJP', 'IN', 'DT', 'S', 'SQ', 'SINV', 'SBAR', 'FRAG']],
  SBARQ: [['left', 'SQ', 'S', 'SINV', 'SBARQ', 'FRAG']],
  SINV: [['left', 'VBZ', 'VBD', 'VBP', 'VB', 'MD', 'VP', 'S', 'SINV', 'ADJP', 'NP']],
  SQ: [['left', 'VBZ', 'VBD', 'VBP', 'VB', 'MD', 'VP', 'SQ']],
  UCP: [['right']],
  VP: [['left', 'TO', 'VBD', 'VBN', 'MD', 'VBZ', 'VB', 'VBG', 'VBP', 'VP', 'ADJP', 'NN', 'NNS', 'NP']],
  WHADJP: [['left', 'CC', 'WRB', 'JJ', 'ADJP']],
  WHADVP: [['right', 'CC', 'WRB']],
  WHNP: [['left', 'WDT', 'WP', 'WP$', 'WHADJP', 'WHPP', 'WHNP']],
  WHPP: [['right', 'IN', 'TO', 'FW']],
  X: [['right']],
  // Collins' special NP rule (thesis §A): last word if POS, else rightmost noun-ish, else leftmost NP, …
  NP: [['rightdis', 'NN', 'NNP', 'NNPS', 'NNS', 'NX', 'POS', 'JJR'], ['left', 'NP'], ['rightdis', '$', 'ADJP', 'PRN'], ['right', 'CD'], ['rightdis', 'JJ', 'JJS', 'RB', 'QP']],
};

// Stanford (SemanticHeadFinder / ModCollinsHeadFinder) changes for content-word heads.
const STANFORD: Record<string, Rule[]> = {
  ...COLLINS_1999,
  ADJP: [['left', '$'], ['rightdis', 'NNS', 'NN', 'JJ', 'QP', 'VBN', 'VBG'], ['left', 'ADJP'], ['rightdis', 'JJP', 'JJR', 'JJS', 'DT', 'RB', 'RBR', 'CD'], ['left', 'ADVP', 'NP']],
  NP: [['rightdis', 'NN', 'NNP', 'NNPS', 'NNS', 'NX', 'NML', 'JJR'], ['left', 'NP', 'PRP'], ['rightdis', '$', 'ADJP', 'JJP', 'PRN', 'FW'], ['right', 'CD'], ['rightdis', 'JJ', 'JJS', 'RB', 'QP', 'DT', 'WDT', 'RBR', 'ADVP'], ['left', 'POS']],
  SBAR: [['left', 'S', 'SQ', 'SINV', 'SBAR', 'FRAG', 'VP', 'WHNP', 'WHPP', 'WHADVP', 'WHADJP', 'IN', 'DT']],
  S: [['left', 'VP', 'S', 'FRAG', 'SBAR', 'ADJP', 'UCP', 'NP', 'TO', 'IN']],
  SQ: [['left', 'VP', 'SQ', 'ADJP', 'VB', 'VBZ', 'VBD', 'VBP', 'MD', 'AUX']],
  SINV: [['left', 'VP', 'VBZ', 'VBD', 'VBP', 'VB', 'MD', 'S', 'SINV', 'ADJP', 'NP']],
  VP: [['left', 'VBD', 'VBN', 'VBZ', 'VB', 'VBG', 'VBP', 'VP', 'ADJP', 'NN', 'NNS', 'JJ', 'NP', 'NNP', 'MD', 'TO']],
  PRN: [['left', 'VP', 'NP', 'PP', 'S', 'SINV', 'SBAR', 'ADJP', 'ADVP', 'INTJ', 'WHNP', 'NAC', 'VBP', 'JJ', 'NN', 'NNP']],
  FRAG: [['right']],
};

const PUNCT = new Set([',', '.', ':', '``', "''", '-LRB-', '-RRB-', '#', '-NONE-']);
const BE = new Set(['be', 'is', 'are', 'was', 'were', 'am', "'s", "'re", "'m", 'been', 'being', 's', 'ai']);
const HAVE = new Set(['have', 'has', 'had', "'ve", "'d", 'having']);
const DO = new Set(['do', 'does', 'did']);
const VERB_TAGS = new Set(['VB', 'VBD', 'VBG', 'VBN', 'VBP', 'VBZ', 'MD', 'TO']);

export function isPunctTag(tag: string): boolean {
  return PUNCT.has(tag);
}

interface Ctx {
  scheme: HeadScheme;
  words: string[];
  tags: string[];
  heads: number[];
  deprels: string[];
}

/** Convert a cleaned tree to 1-based heads (0 = root) and relation labels. */
export function toDependencies(t: ParsedTree, scheme: HeadScheme): { heads: number[]; deprels: string[] } {
  const ctx: Ctx = { scheme, words: t.words, tags: t.tags, heads: new Array(t.words.length).fill(-1), deprels: new Array(t.words.length).fill('dep') };
  const root = lexHead(t.root, ctx);
  ctx.heads[root] = 0;
  ctx.deprels[root] = scheme === 'collins' ? 'ROOT' : 'root';
  return { heads: ctx.heads, deprels: ctx.deprels };
}

/** Returns the 0-based word index heading `n`, attaching every non-head child's head to it. */
function lexHead(n: PNode, ctx: Ctx): number {
  if (n.word !== undefined) return n.word;
  const hi = headChild(n, ctx);
  const childHeads = n.children.map((c) => lexHead(c, ctx));
  const h = childHeads[hi]!;
  n.children.forEach((c, i) => {
    if (i === hi) return;
    const d = childHeads[i]!;
    ctx.heads[d] = h + 1;
    ctx.deprels[d] = ctx.scheme === 'collins' ? collinsLabel(n, n.children[hi]!, c, ctx, d) : stanfordLabel(n, n.children[hi]!, c, i, hi, ctx, d, h);
  });
  return h;
}

function wordOf(n: PNode, ctx: Ctx): string | undefined {
  return n.word !== undefined ? ctx.words[n.word]!.toLowerCase() : undefined;
}

function isAux(n: PNode, ctx: Ctx): boolean {
  if (n.cat === 'MD' || n.cat === 'TO') return true;
  const w = wordOf(n, ctx);
  return w !== undefined && VERB_TAGS.has(n.cat) && (BE.has(w) || HAVE.has(w) || DO.has(w) || w === 'get' || w === 'got' || w === 'gets');
}

function headChild(n: PNode, ctx: Ctx): number {
  const kids = n.children;
  if (kids.length === 1) return 0;
  if (ctx.scheme === 'collins') return headChildPtbconv(n);
  if (ctx.scheme === 'stanford' && (n.cat === 'VP' || n.cat === 'SQ' || n.cat === 'SINV')) {
    // auxiliary + VP complement → the VP heads (aux attaches to the main verb)
    for (let i = 0; i < kids.length; i++) {
      if (!isAux(kids[i]!, ctx)) continue;
      for (let j = i + 1; j < kids.length; j++) if (kids[j]!.cat === 'VP') return j;
    }
    // copula + nominal/adjectival predicate → the predicate heads
    const vi = kids.findIndex((k) => VERB_TAGS.has(k.cat) && BE.has(wordOf(k, ctx) ?? ''));
    if (vi >= 0 && !kids.some((k) => k.cat === 'VP')) {
      for (let j = vi + 1; j < kids.length; j++) {
        const k = kids[j]!;
        if (k.cat === 'ADJP' || (k.cat === 'NP' && !k.fun.includes('TMP') && !k.fun.includes('ADV')) || k.fun.includes('PRD') && (k.cat === 'NP' || k.cat === 'ADJP' || k.cat === 'UCP')) return j;
      }
    }
  }
  const table = STANFORD;
  const rules = table[n.cat] ?? [['left'] as Rule];
  // punctuation never heads; neither does possessive 's (it attaches to the possessor)
  const ok = (i: number) => !PUNCT.has(kids[i]!.cat) && kids[i]!.cat !== 'POS';
  for (const [dir, ...cats] of rules) {
    if (!cats.length) continue;
    const order = dir.startsWith('left') ? [...kids.keys()] : [...kids.keys()].reverse();
    if (dir.endsWith('dis')) {
      const set = new Set(cats);
      for (const i of order) if (set.has(kids[i]!.cat) && ok(i)) return i;
    } else {
      for (const c of cats) for (const i of order) if (kids[i]!.cat === c && ok(i)) return i;
    }
  }
  // default: first (or last) non-punctuation child in the first rule's direction
  const dir = rules[0]![0];
  const order = dir.startsWith('left') ? [...kids.keys()] : [...kids.keys()].reverse();
  for (const i of order) if (ok(i)) return i;
  return order[0]!;
}

const NOMINAL = new Set(['NP', 'NX', 'NAC', 'WHNP', 'QP', 'NML']);
const VERBAL = new Set(['VP', 'S', 'SQ', 'SINV', 'SBAR', 'SBARQ', 'RRC', 'FRAG']);

// Penn2Malt / CoNLL-2007 labels from (parent, dependent) categories and function tags.
function collinsLabel(parent: PNode, head: PNode, dep: PNode, ctx: Ctx, d: number): string {
  if (PUNCT.has(ctx.tags[d]!) && dep.word !== undefined) return 'P';
  if (dep.fun.includes('SBJ')) return 'SBJ';
  if (dep.fun.includes('PRD')) return 'PRD';
  if (parent.cat === 'VP' && dep.cat === 'NP' && !dep.fun.length) return 'OBJ';
  if (parent.cat === 'VP' && dep.cat === 'VP') return 'VC';
  if (parent.cat === 'SBAR' && (dep.cat === 'S' || dep.cat === 'SQ' || dep.cat === 'SINV')) return 'SBAR';
  if (NOMINAL.has(parent.cat)) return 'NMOD';
  if (VERBAL.has(parent.cat)) return 'VMOD';
  if (parent.cat === 'PP' || parent.cat === 'WHPP') return 'PMOD';
  if (parent.cat === 'ADJP' || parent.cat === 'ADVP' || parent.cat === 'WHADJP' || parent.cat === 'WHADVP') return 'AMOD';
  void head;
  return 'DEP';
}

function stanfordLabel(parent: PNode, head: PNode, dep: PNode, i: number, hi: number, ctx: Ctx, d: number, h: number): string {
  const tag = ctx.tags[d]!;
  const w = ctx.words[d]!.toLowerCase();
  const pc = parent.cat;
  const dc = dep.cat;
  if (PUNCT.has(tag) && dep.word !== undefined) return 'punct';
  if (dc === 'CC' || dc === 'CONJP') return 'cc';
  // a same-category sibling after a CC/comma in a coordination is a conjunct
  if (i > hi && parent.children.slice(hi + 1, i).some((k) => k.cat === 'CC' || k.cat === 'CONJP') && (dc === head.cat || (NOMINAL.has(dc) && NOMINAL.has(head.cat)) || (VERBAL.has(dc) && VERBAL.has(head.cat)))) return 'conj';
  if (dep.fun.includes('SBJ')) {
    // passive clause: the head verb already has an auxpass dependent (labels are assigned bottom-up)
    const passive = ctx.deprels.some((r, j) => r === 'auxpass' && ctx.heads[j] === h + 1);
    return (dc === 'S' || dc === 'SBAR' ? 'csubj' : 'nsubj') + (passive ? 'pass' : '');
  }
  if (dep.word !== undefined && (pc === 'VP' || pc === 'SQ' || pc === 'SINV')) {
    if (isAux(dep, ctx) && i < hi) {
      if (BE.has(w) && (head.cat === 'VP' && ctx.tags[h] === 'VBN')) return 'auxpass';
      if (BE.has(w) && head.cat !== 'VP') return 'cop';
      return 'aux';
    }
  }
  if (w === 'not' || w === "n't" || w === 'never') return 'neg';
  if (pc === 'SBAR' && dep.word !== undefined && (dc === 'IN' || dc === 'DT')) return 'mark';
  if (dep.fun.includes('TMP') && dc === 'NP') return 'tmod';
  // "61 years old", "30 years ago": a bare NP modifying an adjective or adverb phrase
  if ((dep.fun.includes('ADV') || dep.fun.includes('EXT') || pc === 'ADJP' || pc === 'ADVP') && dc === 'NP') return 'npadvmod';
  if (pc === 'PP' || pc === 'WHPP') return dc === 'NP' || dc === 'WHNP' ? 'pobj' : 'pcomp';
  if (dc === 'PP' || dc === 'WHPP') return 'prep';
  if (dc === 'PRT') return 'prt';
  if (dc === 'POS') return 'possessive';
  if (NOMINAL.has(pc)) {
    if (dc === 'DT' || dc === 'PDT' || dc === 'WDT') return 'det';
    if (dc === 'PRP$' || dc === 'WP$' || (dc === 'NP' && dep.children.some((k) => k.cat === 'POS'))) return 'poss';
    if (dc === 'CD' || (dc === 'QP' && i < hi)) return 'num';
    if (dc === 'JJ' || dc === 'JJR' || dc === 'JJS' || dc === 'ADJP' || dc === 'VBN' || dc === 'VBG') return 'amod';
    if (dc.startsWith('NN') || (dc === 'NP' && i < hi) || dc === 'NML') return 'nn';
    if (dc === 'SBAR' || dc === 'RRC') return 'rcmod';
    if (dc === 'NP' && i > hi) return 'appos';
    if (dc === 'VP') return 'partmod';
  }
  if (dc === 'RB' || dc === 'RBR' || dc === 'RBS' || dc === 'ADVP' || dc === 'WHADVP' || dc === 'WRB') return 'advmod';
  if (dc === 'DT' || dc === 'PDT') return 'det';
  if (VERBAL.has(pc) || pc === 'ADJP') {
    if (dc === 'NP' && !dep.fun.length && pc === 'VP') return 'dobj';
    if (dc === 'SBAR') return dep.fun.some((f) => f === 'ADV' || f === 'TMP' || f === 'PRP' || f === 'LOC' || f === 'MNR') ? 'advcl' : 'ccomp';
    if (dc === 'S') return dep.children.some((k) => k.fun.includes('SBJ')) ? 'ccomp' : 'xcomp';
    if (dc === 'ADJP' && pc === 'VP') return 'acomp';
  }
  if (dc === 'JJ' || dc === 'ADJP') return 'amod';
  if (dc === 'CD' || dc === 'QP') return 'num';
  return 'dep';
}
