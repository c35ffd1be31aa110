import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import type { z } from 'zod';
import type { Format, IngestRequestInput } from '../../lib/domain/ingest';
import { getDocument } from '../../lib/elasticsearch/client';
import { conflict } from '../../lib/errors';
import { asUuid, sourceId as deriveSourceId } from '../../lib/ids';
import type { IngestJobs } from '../../lib/jobs';
import type { IngestContent } from '../../lib/job-request';
import type { SynapCreateMemory } from './synap';

/**
 * How many times one document_id can be created again after its source was deleted, while Temporal
 * still keeps the earlier runs (its retention): each time walks one more run of its job-id chain.
 */
const MAX_DOCUMENT_GENERATIONS = 50;

/** What a Synap ingestion is made of: the document's fields, and its content when it is not `content` (an upload). */
type SynapFields = z.infer<typeof SynapCreateMemory>;
export type SynapDocument = Pick<SynapFields, 'document_type' | 'mode'> & Partial<Omit<SynapFields, 'document_type' | 'mode'>>;
export interface SynapUpload {
  content: Buffer;
  format: Format;
  fileName?: string;
  declaredContentType?: string;
}

/**
 * Synap's create, shared by the seed's routes and the Python SDK's (synap-sdk.ts): one document → one
 * ingestion; a document_id is accepted once per tenant (409 after).
 */
export function synapIngestions(jobs: IngestJobs, es: ElasticsearchClient, sourcesIndex: string) {
  async function create(tenant: string, body: SynapDocument, upload?: SynapUpload) {
    const request: IngestRequestInput & IngestContent = {
      tenant,
      kind: upload ? 'file' : 'document',
      format: upload?.format ?? body.format ?? 'TXT',
      documentType: body.document_type,
      documentId: body.document_id,
      // "Defaults to the current time if not provided."
      documentDate: body.document_created_at ?? new Date().toISOString(),
      mode: body.mode,
      scope: { userId: body.user_id, customerId: body.customer_id },
      metadata: body.metadata,
      surface: 'synap',
      fileName: upload?.fileName,
      declaredContentType: upload?.declaredContentType,
      content: upload?.content ?? body.content,
    };
    if (!body.document_id) return jobs.start(request);
    const taken = () => conflict(`document_id ${body.document_id} was already ingested`);
    const sourceId = deriveSourceId(tenant, `doc:${body.document_id}`);
    const sourceExists = async () => Boolean(await getDocument(es, { index: sourcesIndex, id: sourceId, _source: false }));
    const startUnder = (jobId: string) =>
      jobs.start(request, { jobId, rejectDuplicate: true }).catch((error) => {
        if ((error as { code?: string }).code === 'conflict') throw taken();
        throw error;
      });
    // The workflow id is derived from the document_id, so Temporal itself refuses a second start
    // (race-free); the source record catches a duplicate after Temporal's retention has passed.
    if (await sourceExists()) throw taken();
    const first = asUuid(jobs.derivedJobId(tenant, 'synap-document', body.document_id));
    try {
      return await startUnder(first);
    } catch (error) {
      if ((error as { code?: string }).code !== 'conflict') throw error;
    }
    // Refused: a run under the first id did not fail. Only when its source was deleted since is the
    // document_id free, under a later id of its chain (looked up here, not on every create).
    const next = await documentJobId(tenant, body.document_id, sourceExists);
    if (!next || next === first) throw taken();
    return startUnder(next);
  }

  /**
   * The job id a document_id's next ingestion starts under: the first of its chain (each derived from
   * the one before) that Temporal keeps no completed run of. A completed ingestion recorded its source
   * before it completed, so a record missing now was deleted (DELETE /v1/sources): the document_id is
   * free again, under the next id. Concurrent creates walk the same chain to the same id, where
   * Temporal lets one start. Undefined while the source exists (checked after each completed run is
   * seen: it may have completed since the caller's check), or past MAX_DOCUMENT_GENERATIONS.
   */
  async function documentJobId(tenant: string, documentId: string, sourceExists: () => Promise<boolean>): Promise<string | undefined> {
    let jobId = asUuid(jobs.derivedJobId(tenant, 'synap-document', documentId));
    for (let generation = 0; generation < MAX_DOCUMENT_GENERATIONS; generation += 1) {
      // None: never started, or past retention. Running: the start refuses it (409). Failed or
      // cancelled: the start runs it again (a failed ingestion may be re-sent).
      if ((await jobs.runStatus(tenant, jobId)) !== 'COMPLETED') return jobId;
      if (await sourceExists()) return undefined;
      jobId = asUuid(jobs.derivedJobId(tenant, 'synap-document', documentId, 'after', jobId));
    }
    return undefined;
  }

  return { create };
}
