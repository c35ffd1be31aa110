import { isoDate } from '../../lib/domain/dates';
import { Conversation } from '../../lib/domain/ingest';
import { badInput } from '../../lib/errors';
import { turnText } from '../../lib/chunking/chunk-conversation';
import { SectionBuilder } from './sections';
import type { Parser } from './types';

/** Conversations arrive normalised by the API surface ({messages, sessionDate}) as JSON in the blob. */
export const parseConversation: Parser = async (bytes) => {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw badInput('the conversation is not valid JSON');
  }
  const parsed = Conversation.safeParse(raw);
  if (!parsed.success) throw badInput(`the conversation is malformed: ${parsed.error.issues[0]?.message}`);
  const turns = parsed.data.messages
    .map((message, i) => ({ ...message, index: message.index ?? i }))
    .filter((message) => message.content.trim().length > 0);
  if (turns.length === 0) throw badInput('the conversation has no message with text');
  const builder = new SectionBuilder();
  for (const turn of turns) builder.add(turnText(turn), { unit: 'atomic', separator: '\n' });
  return {
    ...builder.build({ format: 'CONVERSATION', detectedType: 'application/vnd.cairn.conversation+json', sessionDate: isoDate(parsed.data.sessionDate) }),
    turns,
  };
};
