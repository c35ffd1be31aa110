import type { Client } from '@elastic/elasticsearch';
import type { ConversationMessage } from './domain/ingest';
import { sha256 } from './ids';

/** A message's identity within its conversation: position + speaker + text, so an edit counts as new. */
export const messageHash = (message: ConversationMessage, position: number) =>
  sha256('turn', position, message.role, message.name ?? '', message.content, (message.imageUrls ?? []).join(' ')).slice(0, 32);

/**
 * Which messages of an ingest-or-update conversation are already stored, kept as turn hashes on its
 * source record. Re-sending a conversation with more messages ingests only the new ones; the same
 * messages again start nothing. Memory ids are derived from content too, so a race between two
 * re-sends can repeat work but never duplicate a memory.
 */
export class ConversationLedger {
  constructor(
    private readonly es: Client,
    private readonly sourcesIndex: string,
  ) {}

  async known(tenant: string, sourceId: string): Promise<Set<string>> {
    const response = await this.es.get<{ tenant: string; turn_hashes?: string[] }>(
      { index: this.sourcesIndex, id: sourceId, _source_includes: ['tenant', 'turn_hashes'] },
      { ignore: [404] },
    );
    if (!response.found || response._source?.tenant !== tenant) return new Set();
    return new Set(response._source.turn_hashes ?? []);
  }

  /** Adds hashes to the record (created if absent), retrying on concurrent writers. */
  async record(tenant: string, sourceId: string, fields: { kind: string; documentId: string; jobId: string }, hashes: string[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const response = await this.es.get<{ turn_hashes?: string[] }>({ index: this.sourcesIndex, id: sourceId }, { ignore: [404] });
      const now = new Date().toISOString();
      try {
        if (!response.found) {
          await this.es.index({
            index: this.sourcesIndex,
            id: sourceId,
            op_type: 'create',
            document: {
              id: sourceId,
              tenant,
              kind: fields.kind,
              document_id: fields.documentId,
              turn_hashes: hashes,
              turn_count: hashes.length,
              last_job_id: fields.jobId,
              job_ids: [fields.jobId],
              created_at: now,
              updated_at: now,
            },
          });
        } else {
          const merged = [...new Set([...(response._source?.turn_hashes ?? []), ...hashes])];
          await this.es.update({
            index: this.sourcesIndex,
            id: sourceId,
            doc: { turn_hashes: merged, turn_count: merged.length, updated_at: now },
            if_seq_no: response._seq_no,
            if_primary_term: response._primary_term,
          });
        }
        return;
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode !== 409 || attempt >= 5) throw error;
      }
    }
  }
}
