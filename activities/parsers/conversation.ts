import { ParsedDocument } from '../../lib/domain/document';
import { Conversation } from '../../lib/domain/ingest';
import { badInput } from '../../lib/errors';
import { turnText } from '../../lib/chunking/chunk-conversation';
import type { Parser } from './types';

/** Conversations arrive normalised by the API surface ({messages, sessionDate}) as JSON in the blob. */
export const parseConversation: Parser = async (bytes) => {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw badInput('the conversation is not valid JSON');
  }
  const parsed = Conversation.safeParse(raw);
  if (!parsed.success) throw badInput(`the conversation is malformed: ${parsed.error.issues[0]?.message}`);
  const turns = parsed.data.messages
    .map((message, i) => ({ ...message, index: message.index ?? i }))
    .filter((message) => message.content.trim().length > 0);
  if (turns.length === 0) throw badInput('the conversation has no message with text');
  let offset = 0;
  const sections = turns.map((turn) => {
    const text = turnText(turn);
    const section = { text, charStart: offset, atomic: true };
    offset += text.length + 1;
    return section;
  });
  const document: ParsedDocument = {
    format: 'CONVERSATION',
    detectedType: 'application/vnd.cairn.conversation+json',
    text: sections.map((section) => section.text).join('\n'),
    sections,
    turns,
    sessionDate: parsed.data.sessionDate,
  };
  return document;
};
