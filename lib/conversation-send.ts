import { messageHash, type ConversationAttributes, type ConversationLedger } from './conversation-ledger';
import type { ConversationMessage, IngestRequestInput } from './domain/ingest';
import { memoryScope } from './domain/scope';
import { sha256, sourceId as deriveSourceId } from './ids';
import type { IngestJobs, StartedJob } from './jobs';
import type { Logger } from './logger';

/** What every conversation's ingest request says of its kind. */
export const CONVERSATION = { kind: 'conversation', format: 'CONVERSATION', documentType: 'ai-chat-conversation' } as const;

/** A conversation sent under its own id, whose messages *are* the conversation (ingest or update). */
export interface ConversationSend {
  tenant: string;
  /** The caller's id for the conversation, kept on the source record. */
  conversationId: string;
  /** What the source is keyed by (the same id sent again is the same source). */
  sourceKey: string;
  /** Every message as sent now, each with its position (`index`). */
  messages: ConversationMessage[];
  attributes: ConversationAttributes;
  /**
   * What every message is read in besides its own words (its scope, the session date, the mode): when
   * it changes, every message counts as edited, so all are ingested again under it.
   */
  context?: string;
  /** The ingest request of a job over some of the messages, besides what every conversation's says (CONVERSATION) and its content. */
  request: Omit<IngestRequestInput, keyof typeof CONVERSATION | 'documentId'>;
  /** The job's content: the messages it ingests, as the parse stage reads a conversation. */
  contentOf(messages: ConversationMessage[]): string;
}

export interface ConversationSent {
  sourceId: string;
  /** queued: a job ingests new or edited messages; updated: only removals or new attributes, done; unchanged: nothing to do. */
  status: 'queued' | 'updated' | 'unchanged';
  job?: StartedJob;
  /** New or edited messages. */
  added: number;
  unchanged: number;
  /** Stored memories of edited or removed messages (or of failed jobs), dropped; their replacements come with the job. */
  replaced: number;
}

/**
 * Ingests a re-sent conversation against what its source record says is stored (ConversationLedger):
 * only new or edited messages go to a job, an edited or removed message's memories are dropped, new
 * attributes reach the stored memories. The order keeps a failure harmless: the job starts before
 * anything is dropped (a failed start leaves the old memories for the client's retry), the drops (and
 * the neighbouring turns' contexts rewritten without the old words) come before the answer (the old
 * text is no longer found once the client hears back), and the record is
 * written last (a lost write only means a later re-send repeats idempotent work).
 */
export async function sendConversation(jobs: IngestJobs, ledger: ConversationLedger, send: ConversationSend, log: Logger): Promise<ConversationSent> {
  const sourceId = deriveSourceId(send.tenant, send.sourceKey);
  // Sends of one conversation at once would each plan against the record before the other's job
  // and ingest the same new messages twice: they take turns, each planning on what the last recorded.
  return ledger.oneAtATime(send.tenant, sourceId, () => applySend(jobs, ledger, send, sourceId, log));
}

async function applySend(jobs: IngestJobs, ledger: ConversationLedger, send: ConversationSend, sourceId: string, log: Logger): Promise<ConversationSent> {
  const { tenant, messages, attributes } = send;
  const hashes = messages.map((message, position) => (send.context === undefined ? messageHash(message, position) : sha256(messageHash(message, position), send.context).slice(0, 32)));
  const update = await ledger.plan(tenant, sourceId, hashes, attributes);
  const toIngest = update.ingest.map((position) => messages[position]!);
  const counts = { added: update.changed.length, unchanged: messages.length - update.changed.length };
  if (toIngest.length === 0 && !update.stale) return { sourceId, status: 'unchanged', ...counts, replaced: 0 };
  // Messages with no text give nothing to ingest but still count as sent.
  const job = toIngest.some((message) => message.content.trim())
    ? await jobs.start({ ...send.request, ...CONVERSATION, documentId: send.conversationId, content: send.contentOf(toIngest) }, { sourceKey: send.sourceKey })
    : undefined;
  await ledger.refreshContexts(tenant, update.superseded, messages);
  const replaced = (await ledger.dropSuperseded(update.superseded)) + (await ledger.dropFailed(tenant, sourceId, update.failedJobs));
  if (update.attributesChanged) await ledger.applyAttributes(tenant, sourceId, attributes);
  const ingested = new Set(update.ingest);
  const turnJobs = update.jobOf.map((jobId, position) => (ingested.has(position) ? (job?.jobId ?? '') : jobId));
  await ledger
    .record(tenant, sourceId, { ...conversationFields(send), jobId: job?.jobId, acceptedAt: job?.createdAt ?? new Date().toISOString() }, hashes, turnJobs, attributes, {
      attributesSettled: !(update.attributesChanged && update.jobsOpen),
    })
    .catch((error) => log.warn({ err: error, sourceId }, 'could not record conversation turns'));
  return { sourceId, status: job ? 'queued' : 'updated', job, ...counts, replaced };
}

/** What the conversation's source record says of it, besides its turns. */
function conversationFields(send: ConversationSend) {
  const { kind, format, documentType } = CONVERSATION;
  return { kind, format, documentType, documentId: send.conversationId, scope: memoryScope(send.tenant, send.request.scope ?? {}) };
}
