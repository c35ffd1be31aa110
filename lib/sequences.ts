import type { Client } from '@elastic/elasticsearch';
import { getDocument, isVersionConflict, retryOnVersionConflict, type StoredDocument } from './elasticsearch/client';
import { upstreamFailure } from './errors';

interface SequenceDoc {
  tenant: string;
  next: number;
  updated_at: string;
}

/** The key of a Tex session's turn positions: deleting the session's source resets it (lib/sources.ts). */
export const turnPositionsKey = (sourceId: string) => `turns:${sourceId}`;

/** Claims racing for one key, each tried again on what the others wrote: plenty for writes that race by the handful. */
const CLAIM_ATTEMPTS = 25;

/**
 * Numbers handed out in order across every API process, per key (the next turn positions of a Tex
 * session): one counter document per key in the sequences index, claimed by compare-and-set — read,
 * then written only if no other claim landed in between (this cluster has no scripts to increment in
 * place). A claim survives the process that made it, so a restarted or second API never hands the
 * same numbers out again. A key's document stays (one small document per Tex session) until its
 * source is deleted.
 */
export class Sequences {
  constructor(
    private readonly es: Client,
    private readonly index: string,
  ) {}

  /**
   * Claims `count` numbers of `key`, from `floor` at least (what the data itself shows is taken, for
   * keys numbered before they had a counter); answers the first. A count of 0 claims nothing and
   * answers where the next claim would start.
   */
  async claim(tenant: string, key: string, floor: number, count: number): Promise<number> {
    return retryOnVersionConflict(CLAIM_ATTEMPTS, async () => {
      const stored = await getDocument<SequenceDoc>(this.es, { index: this.index, id: key });
      const first = Math.max(floor, stored?.source.next ?? 0);
      if (count > 0) await this.write(tenant, key, first + count, stored);
      return first;
    }).catch((error) => {
      // Every attempt lost to another claim: busy, not broken (503, try again), never a 500.
      if (isVersionConflict(error)) throw upstreamFailure(`${key}: ${CLAIM_ATTEMPTS} claims in a row lost to others at once`);
      throw error;
    });
  }

  /**
   * Hands back a claim (`count` numbers from `first`) that numbered nothing after all, if no later
   * claim followed it, so that refused or repeated writes leave no gaps. A later claim keeps the gap.
   */
  async release(tenant: string, key: string, first: number, count: number): Promise<void> {
    if (count === 0) return;
    const stored = await getDocument<SequenceDoc>(this.es, { index: this.index, id: key });
    if (stored?.source.next !== first + count) return;
    await this.write(tenant, key, first, stored).catch((error) => {
      if (!isVersionConflict(error)) throw error;
    });
  }

  private async write(tenant: string, key: string, next: number, stored: StoredDocument<SequenceDoc> | undefined): Promise<void> {
    const document: SequenceDoc = { tenant, next, updated_at: new Date().toISOString() };
    // Read by id in real time only: no refresh to wait for.
    if (!stored) {
      await this.es.create({ index: this.index, id: key, document, refresh: false });
      return;
    }
    // Without its sequence number the write would be unconditional, and could undo another claim.
    if (stored.seqNo === undefined || stored.primaryTerm === undefined) throw upstreamFailure(`${key}: Elasticsearch answered no sequence number`);
    await this.es.index({ index: this.index, id: key, document, if_seq_no: stored.seqNo, if_primary_term: stored.primaryTerm, refresh: false });
  }
}
