import type { Memory } from '../domain/memory';
import type { NeighbourWeights, SearchMethod, SearchPlan } from './plan';

export interface Ranking {
  method: SearchMethod;
  ids: string[];
  scores: number[];
}

export interface Fused {
  id: string;
  score: number;
  ranks: Partial<Record<SearchMethod, number>>;
}

/**
 * Reciprocal rank fusion, client-side (this Elasticsearch has no rrf retriever): a memory scores
 * Σ weight / (k + rank) over the methods that found it. BM25 and cosine scores live on different
 * scales, ranks do not. With fusion `none` the first method's own scores and order stand.
 */
export function fuseRankings(rankings: Ranking[], plan: SearchPlan, documents: Map<string, Memory>): Fused[] {
  const fused = new Map<string, Fused>();
  const single = plan.fusion === 'none' || rankings.length === 1;
  for (const ranking of single ? rankings.slice(0, 1) : rankings) {
    const weight = plan.weights[ranking.method] ?? 1;
    ranking.ids.forEach((id, i) => {
      const entry = fused.get(id) ?? { id, score: 0, ranks: {} };
      entry.ranks[ranking.method] = i + 1;
      entry.score += single ? ranking.scores[i]! : weight / (plan.rrfK + i + 1);
      fused.set(id, entry);
    });
  }
  const entries = [...fused.values()];
  if (plan.neighbours) {
    boostNeighbours(entries, plan.neighbours, documents);
    keepAgreedFirst(entries, single ? rankings.slice(0, 1) : rankings);
  }
  return entries.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id));
}

/**
 * Adjacent turns of one conversation that both ranked lend each other part of their score: a question
 * usually matches the turn that asked, and the answer is the reply right after it. A turn takes the
 * larger of its two neighbours' shares.
 */
function boostNeighbours(entries: Fused[], weights: NeighbourWeights, documents: Map<string, Memory>) {
  const byTurn = new Map<string, Fused>();
  const key = (source: string, turn: number) => `${source}\u0000${turn}`;
  for (const entry of entries) {
    const turn = documents.get(entry.id)?.provenance;
    if (turn?.turn_start !== undefined) byTurn.set(key(turn.source_id, turn.turn_start), entry);
  }
  const base = new Map(entries.map((entry) => [entry.id, entry.score]));
  for (const entry of entries) {
    const turn = documents.get(entry.id)?.provenance;
    if (turn?.turn_start === undefined) continue;
    const previous = byTurn.get(key(turn.source_id, turn.turn_start - 1));
    const next = byTurn.get(key(turn.source_id, (turn.turn_end ?? turn.turn_start) + 1));
    const fromPrevious = previous ? (asksQuestion(documents.get(previous.id)?.text) ? weights.after_question : weights.previous) * base.get(previous.id)! : 0;
    const fromNext = next ? weights.next * base.get(next.id)! : 0;
    entry.score += Math.max(fromPrevious, fromNext);
  }
}

/**
 * The memory every method ranked first stays first: when BM25 and kNN agree on the best match (the
 * quote of a stored memory, a document that says just what was asked), no score borrowed from
 * neighbouring turns displaces it — a document chunk has none to borrow.
 */
function keepAgreedFirst(entries: Fused[], rankings: Ranking[]) {
  const first = rankings[0]?.ids[0];
  if (!first || rankings.some((ranking) => ranking.ids[0] !== first)) return;
  const agreed = entries.find((entry) => entry.id === first)!;
  const best = Math.max(...entries.map((entry) => entry.score));
  if (agreed.score < best) agreed.score = best * (1 + 1e-9);
}

/** A turn that ends by asking ("…What gave you the idea?"), an attached photo's caption aside. */
function asksQuestion(text: string | undefined): boolean {
  // Only the end is read: the pattern scans from every "?" it meets, which on a long text of
  // "?" and spaces is quadratic.
  return Boolean(text && /\?\s*(\[[^\]]*\])?\s*$/.test(text.slice(-300).trimEnd()));
}
