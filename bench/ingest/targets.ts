/** What bench:ingest drives: the in-process API and worker, or a running Cairn at CAIRN_URL. */
import type { Client } from '@elastic/elasticsearch';
import type { temporal } from '@temporalio/proto';
import { loadConfig, type Config } from '../../lib/config';
import type { JobProgress } from '../../lib/domain/job';
import { createLogger } from '../../lib/logger';
import type { Embedder } from '../../lib/models/embedder';
import { createModelProviders } from '../../lib/models/providers';
import { startHarness, type Harness } from '../../test/support/harness';
import type { CorpusDocument } from './corpus';

export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The API the bench drives: the in-process harness, or a running Cairn at CAIRN_URL. */
export interface Target {
  submit(document: CorpusDocument): Promise<string>;
  wait(jobId: string): Promise<JobProgress>;
  /** The job's workflow history, when the bench can reach Temporal (in-process only). */
  history?(jobId: string): Promise<HistoryEvent[]>;
  embedder?: Embedder;
  /** The client the worker writes with (in-process only): its requests are counted, the cluster's CPU read. */
  es?: Client;
  config: Config;
  close(): Promise<void>;
}

export async function inProcessTarget(): Promise<Target> {
  const h: Harness = await startHarness({ tenants: ['bench'] });
  return {
    submit: (document) => submitOverHttp((method, route, body) => h.api(method, route, { body }), document),
    wait: (jobId) => h.waitForJob('bench', jobId, 600_000),
    history: async (jobId) => (await h.jobs.handle('bench', jobId).fetchHistory()).events ?? [],
    embedder: h.runtime.models.embedder,
    es: h.runtime.es,
    config: h.config,
    close: () => h.close(),
  };
}

export async function remoteTarget(baseUrl: string): Promise<Target> {
  const key = process.env.CAIRN_API_KEY;
  const call = async (method: string, route: string, body?: unknown) => {
    const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
    const init: RequestInit = { method, headers };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${baseUrl.replace(/\/$/, '')}${route}`, init);
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  const config = loadConfig();
  const models = await createModelProviders(config, createLogger('warn', 'bench'));
  return {
    submit: (document) => submitOverHttp(call, document),
    async wait(jobId) {
      for (;;) {
        const { status, body } = await call('GET', `/v1/jobs/${jobId}`);
        if (status !== 200) throw new Error(`GET /v1/jobs/${jobId} answered ${status}`);
        if (['completed', 'failed', 'cancelled'].includes(body.status)) return body as JobProgress;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    embedder: models.embedder,
    config,
    close: () => models.close(),
  };
}

type Call = (method: string, route: string, body?: unknown) => Promise<{ status: number; body: any }>;

async function submitOverHttp(call: Call, document: CorpusDocument): Promise<string> {
  let response;
  if (document.format === 'PDF' || document.format === 'DOCX') {
    const form = new FormData();
    const type = document.format === 'PDF' ? 'application/pdf' : 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
    form.set('file', new Blob([document.bytes], { type }), `${document.name}.${document.format.toLowerCase()}`);
    form.set('format', document.format);
    form.set('document_id', document.name);
    response = await call('POST', '/v1/files', form);
  } else {
    response = await call('POST', '/v1/documents', {
      content: new TextDecoder().decode(document.bytes),
      format: document.format,
      document_id: document.name,
    });
  }
  if (response.status !== 202) throw new Error(`ingest of ${document.name} answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body.job_id as string;
}
