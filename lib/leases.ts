import type { Client, estypes } from '@elastic/elasticsearch';
import { getDocument, isVersionConflict } from './elasticsearch/client';
import { upstreamFailure } from './errors';

/** How long a lease holds once taken: a holder that stops (a crash) blocks the key no longer than this. */
const LEASE_MS = 30_000;
/** How long a caller waits its turn before it answers busy (503, try again). */
const WAIT_MS = 20_000;
const POLL_MS = 10;

/** The lease a source's delete holds: its jobs write nothing while it runs (they retry after). */
export const sourceDeletion = (sourceId: string) => `source-delete:${sourceId}`;
/** The lease a bulk delete of a tenant's sources holds, for every source of the tenant. */
export const sourcesDeletion = (tenant: string) => `sources-delete:${tenant}`;

/** The leases a source's writes wait on: its own delete's and its tenant's bulk delete's. */
export const deletionsOf = (tenant: string, sourceId: string) => [sourceDeletion(sourceId), sourcesDeletion(tenant)];

/**
 * Throws (a retryable failure: the activity tries again) while the source, or its tenant's sources,
 * are being deleted: a job's write landing then would be deleted with them though the job completes,
 * or would outlive its deleted record.
 */
export async function assertNotBeingDeleted(leases: Leases, tenant: string, sourceId: string): Promise<void> {
  if (await leases.anyHeld(deletionsOf(tenant, sourceId))) throw beingDeleted(sourceId);
}

export const beingDeleted = (sourceId: string) => upstreamFailure(`source ${sourceId} is being deleted; its job writes once the delete is done`);

/** Whether a lease document, as an mget read it, is held now (one past LEASE_MS counts as let go). */
export function leaseHeld(doc: estypes.MgetResponseItem<{ updated_at: string }>): boolean {
  return 'found' in doc && doc.found && Date.parse(doc._source!.updated_at) + LEASE_MS >= Date.now();
}

/**
 * Work done one at a time per key across every API process: a lease document per key in the sequences
 * index (created only if absent, so two processes never hold it at once; deleted when the work ends,
 * or taken over once LEASE_MS old), and within one process a queue per key, so its callers take their
 * turns in the order they came. For read-plan-write sequences that must see each other's writes (two
 * sends of one conversation each planning against the other's record).
 */
export class Leases {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly es: Client,
    private readonly index: string,
  ) {}

  /** Runs `work` once no other holder of `key`, in this process or another, is running. */
  holding<T>(tenant: string, key: string, work: () => Promise<T>): Promise<T> {
    const before = this.queues.get(key) ?? Promise.resolve();
    const turn = before.then(() => this.leased(tenant, key, work));
    const settled = turn.catch(() => undefined);
    this.queues.set(key, settled);
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    });
    return turn;
  }

  /** Whether any of `keys` is held now (read in real time; a lease past LEASE_MS counts as let go). */
  async anyHeld(keys: string[]): Promise<boolean> {
    const { docs } = await this.es.mget<{ updated_at: string }>({ index: this.index, ids: keys });
    return docs.some(leaseHeld);
  }

  private async leased<T>(tenant: string, key: string, work: () => Promise<T>): Promise<T> {
    const held = await this.take(tenant, key);
    try {
      return await work();
    } finally {
      await this.es.delete({ index: this.index, id: key, if_seq_no: held.seqNo, if_primary_term: held.primaryTerm, refresh: false }, { ignore: [404, 409] });
    }
  }

  private async take(tenant: string, key: string): Promise<{ seqNo: number; primaryTerm: number }> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      try {
        const created = await this.es.create({ index: this.index, id: key, document: { tenant, updated_at: new Date().toISOString() }, refresh: false });
        return versionOf(key, created._seq_no, created._primary_term);
      } catch (error) {
        if (!isVersionConflict(error)) throw error;
      }
      const holder = await getDocument<{ updated_at: string }>(this.es, { index: this.index, id: key });
      if (holder && Date.parse(holder.source.updated_at) + LEASE_MS < Date.now()) {
        const { seqNo, primaryTerm } = versionOf(key, holder.seqNo, holder.primaryTerm);
        await this.es.delete({ index: this.index, id: key, if_seq_no: seqNo, if_primary_term: primaryTerm, refresh: false }, { ignore: [404, 409] });
        continue;
      }
      if (Date.now() > deadline) throw upstreamFailure(`${key} is busy: another request on it has run for ${WAIT_MS / 1000} s`);
      if (holder) await new Promise((resolve) => setTimeout(resolve, POLL_MS + Math.random() * POLL_MS));
    }
  }
}

/** A lease's version; without it a delete would be unconditional, and could end another holder's lease. */
function versionOf(key: string, seqNo: number | undefined, primaryTerm: number | undefined): { seqNo: number; primaryTerm: number } {
  if (seqNo === undefined || primaryTerm === undefined) throw upstreamFailure(`${key}: Elasticsearch answered no sequence number`);
  return { seqNo, primaryTerm };
}
