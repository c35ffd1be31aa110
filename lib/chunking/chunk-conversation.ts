import type { Chunk } from '../domain/document';
import type { ConversationMessage } from '../domain/ingest';
import { countTokens, splitByTokens } from './tokens';

export interface ConversationChunkOptions {
  maxTokens: number;
  /** Turns per chunk at most; one turn per chunk keeps recall precise, a few give context. */
  maxTurns: number;
}

/** The text a turn is indexed as: speaker first, so "what did Melanie say" matches by name too. */
export function turnText(turn: ConversationMessage): string {
  const speaker = turn.name ?? turn.role;
  return `${speaker}: ${turn.content}`;
}

/** One or a few consecutive turns per chunk, keeping speaker, turn positions and timestamps. */
export function chunkConversation(turns: ConversationMessage[], options: ConversationChunkOptions): Chunk[] {
  const chunks: Chunk[] = [];
  let group: { turn: ConversationMessage; position: number; tokens: number; part?: number }[] = [];
  let used = 0;

  const emit = () => {
    if (group.length === 0) return;
    const text = group.map(({ turn }) => turnText(turn)).join('\n');
    const turnIds = group.map(({ turn }) => turn.turnId).filter((id): id is string => Boolean(id));
    chunks.push({
      index: chunks.length,
      text,
      tokens: countTokens(text),
      turnStart: group[0]!.position,
      turnEnd: group[group.length - 1]!.position,
      turnPart: group[0]!.part,
      turnIds: turnIds.length ? turnIds : undefined,
      speakers: [...new Set(group.map(({ turn }) => turn.name ?? turn.role))],
      timestamp: group[0]!.turn.timestamp,
    });
    group = [];
    used = 0;
  };

  turns.forEach((turn, i) => {
    const position = turn.index ?? i;
    const text = turnText(turn);
    const tokens = countTokens(text);
    if (tokens > options.maxTokens) {
      // A single huge message is split into windows that each keep the speaker prefix.
      emit();
      splitByTokens(turn.content, options.maxTokens - 8).forEach((window, part) => {
        group.push({ turn: { ...turn, content: window }, position, tokens: countTokens(window), part });
        emit();
      });
      return;
    }
    if (group.length >= options.maxTurns || (used + tokens > options.maxTokens && group.length > 0)) emit();
    group.push({ turn, position, tokens });
    used += tokens;
  });
  emit();
  return chunks;
}
