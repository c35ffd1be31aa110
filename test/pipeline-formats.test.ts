import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Format, IngestRequestInput } from '../lib/domain/ingest';
import type { JobProgress } from '../lib/domain/job';
import { MEMORY_TYPES, type StoredMemory } from '../lib/domain/memory';
import {
  conversationFixture,
  csvFixture,
  htmlFixture,
  jsonFixture,
  makeDocx,
  makePdf,
  markdownFixture,
  textFixture,
} from './fixtures/documents';
import { startHarness, type Harness } from './support/harness';

/**
 * Every input format through the real pipeline (Temporal workflow → activities → Elasticsearch):
 * memory counts match chunks, provenance points back at the source, and the text is searchable.
 */
describe('pipeline: every format becomes searchable memories with provenance', () => {
  let h: Harness;
  let site: { url: string; close: () => Promise<void> };
  beforeAll(async () => {
    // The URL test serves its page from 127.0.0.1, which only this opt-in allows.
    h = await startHarness({ env: { CAIRN_ALLOW_PRIVATE_URLS: 'true' } });
    site = await serve({ '/porto.html': ['text/html; charset=utf-8', htmlFixture], '/data.csv': ['text/csv', csvFixture] });
  });
  afterAll(async () => {
    await site?.close();
    await h?.close();
  });

  async function ingest(format: Format, content: Uint8Array | string | undefined, extra: Partial<IngestRequestInput> = {}) {
    const started = await h.jobs.start({ tenant: 'acme', kind: 'file', format, content, ...extra });
    const progress = await h.waitForJob('acme', started.jobId);
    return { ...started, progress };
  }

  async function memoriesOf(jobId: string): Promise<StoredMemory[]> {
    const { hits } = await h.runtime.es.search<StoredMemory>({
      index: h.runtime.indices.memories,
      query: { bool: { filter: [{ term: { tenant: 'acme' } }, { term: { 'provenance.job_id': jobId } }] } },
      sort: [{ 'provenance.chunk_index': 'asc' }],
      size: 500,
    });
    return hits.hits.map((hit) => hit._source!);
  }

  async function search(text: string, jobId: string): Promise<StoredMemory[]> {
    const { hits } = await h.runtime.es.search<StoredMemory>({
      index: h.runtime.indices.memories,
      query: { bool: { must: [{ match: { text } }], filter: [{ term: { tenant: 'acme' } }, { term: { 'provenance.job_id': jobId } }] } },
    });
    return hits.hits.map((hit) => hit._source!);
  }

  function expectCompleted(progress: JobProgress) {
    expect(progress.errors).toEqual([]);
    expect(progress.status).toBe('completed');
    expect(progress.counts.chunks).toBeGreaterThan(0);
    expect(progress.memories_created).toBe(progress.counts.chunks);
  }

  it('TXT: paragraphs become token-bounded chunks with character offsets', async () => {
    const text = textFixture(4);
    const { jobId, sourceId, progress } = await ingest('TXT', text, { documentId: 'azores-notes' });
    expectCompleted(progress);
    const memories = await memoriesOf(jobId);
    expect(memories).toHaveLength(progress.counts.chunks);
    for (const memory of memories) {
      expect(MEMORY_TYPES).toContain(memory.type);
      expect(memory.provenance).toMatchObject({ source_id: sourceId, format: 'TXT', document_id: 'azores-notes' });
      expect(text.slice(memory.provenance.char_start, memory.provenance.char_end)).toBe(memory.text);
    }
    expect((await search('whales São Miguel', jobId)).length).toBeGreaterThan(0);
  });

  it('MARKDOWN: one chunk per heading, carrying the heading path', async () => {
    const { jobId, progress } = await ingest('MARKDOWN', markdownFixture);
    expectCompleted(progress);
    const memories = await memoriesOf(jobId);
    expect(memories.map((memory) => memory.text.split('\n')[0])).toEqual([
      'Field guide',
      'Field guide › Trams',
      'Field guide › Trams › Tickets',
      'Field guide › Food',
    ]);
    const [hit] = await search('funicular ticket', jobId);
    expect(hit!.text).toContain('Viva Viagem');
  });

  it('HTML: the article is indexed, never scripts, navigation, header or footer', async () => {
    const { jobId, progress } = await ingest('HTML', htmlFixture);
    expectCompleted(progress);
    const all = (await memoriesOf(jobId)).map((memory) => memory.text).join('\n');
    expect(all).toContain('Dom Luís I bridge');
    expect(all).toContain('Vila Nova de Gaia');
    for (const chrome of ['SCRIPTSECRET', 'NAVIGATIONMENU', 'SITEHEADER', 'FOOTERCOPYRIGHT', 'color:red']) expect(all).not.toContain(chrome);
    expect((await search('port wine cellars', jobId))[0]!.text).toMatch(/Wine cellars/);
  });

  it('JSON: records and keys become readable text', async () => {
    const { jobId, progress } = await ingest('JSON', jsonFixture);
    expectCompleted(progress);
    const [hit] = await search('counsellor', jobId);
    expect(hit!.text).toContain('name: Caroline');
    expect(hit!.text).toContain('city: Porto');
  });

  it('CSV: rows become "column: value" text, never split', async () => {
    const { jobId, progress } = await ingest('CSV', csvFixture);
    expectCompleted(progress);
    const lines = (await memoriesOf(jobId)).flatMap((memory) => memory.text.split('\n'));
    expect(lines).toEqual(expect.arrayContaining(['city: Zaragoza | country: Spain | population: 675000']));
    expect((await search('Zaragoza', jobId)).length).toBe(1);
  });

  it('PDF: text from every page, generated with pdf-lib', async () => {
    const pdf = await makePdf([['The lighthouse of Cabo da Roca', 'is the westernmost point of Europe.'], ['Page two mentions the Sintra palaces.']], {
      title: 'Coast guide',
    });
    const { jobId, progress } = await ingest('PDF', pdf, { fileName: 'coast.pdf', documentType: 'pdf' });
    expectCompleted(progress);
    const memories = await memoriesOf(jobId);
    expect(memories.map((memory) => memory.text).join('\n')).toMatch(/westernmost point of Europe[\s\S]*Sintra palaces/);
    expect(memories[0]!.provenance).toMatchObject({ format: 'PDF', file_name: 'coast.pdf', document_type: 'pdf' });
    const [sintra] = await search('Sintra', jobId);
    expect(sintra!.text).toContain('Sintra palaces');
    // The page a memory comes from is part of its provenance.
    expect(sintra!.provenance.page).toBe(2);
    expect(memories.find((memory) => memory.text.includes('Cabo da Roca'))!.provenance.page).toBe(1);
  });

  it('DOCX: headings and paragraphs, generated with the docx package', async () => {
    const docx = await makeDocx([
      { heading: 'Algarve', paragraphs: ['The cliffs of Ponta da Piedade glow at sunset.', 'Lagos has a slave market museum.'] },
      { heading: 'Alentejo', paragraphs: ['Évora keeps a Roman temple.'] },
    ]);
    const { jobId, progress } = await ingest('DOCX', docx);
    expectCompleted(progress);
    const memories = await memoriesOf(jobId);
    expect(memories.map((memory) => memory.text)).toEqual([
      'Algarve\nThe cliffs of Ponta da Piedade glow at sunset.\n\nLagos has a slave market museum.',
      'Alentejo\nÉvora keeps a Roman temple.',
    ]);
    expect((await search('Roman temple', jobId))).toHaveLength(1);
  });

  it('CONVERSATION: one turn per memory, keeping speaker, turn position, its timestamp and the session date', async () => {
    const accepted = await h.api('POST', '/v1/conversations', {
      body: { messages: conversationFixture.messages, session_date: conversationFixture.sessionDate, session_id: 'sess-1' },
    });
    expect(accepted.status).toBe(202);
    const progress = await h.waitForJob('acme', accepted.body.job_id);
    expectCompleted(progress);
    const memories = await memoriesOf(accepted.body.job_id);
    expect(memories).toHaveLength(3);
    expect(memories[1]!.text).toMatch(/^Melanie: That sounds wonderful/);
    expect(memories[1]!.provenance).toMatchObject({ turn_start: 1, turn_end: 1, speakers: ['Melanie'], format: 'CONVERSATION', timestamp: '2023-05-08T13:57:00.000Z' });
    expect(Date.parse(memories[1]!.provenance.session_date!)).toBe(Date.parse(conversationFixture.sessionDate));
    expect(memories[1]!.scope.session_id).toBe('sess-1');
    expect((await search('sunrise painting', accepted.body.job_id)).length).toBeGreaterThan(0);
  });

  it('URL: fetched, typed by its Content-Type, parsed as HTML', async () => {
    const { jobId, progress } = await ingest('URL', undefined, { kind: 'url', sourceUrl: `${site.url}/porto.html` });
    expectCompleted(progress);
    const memories = await memoriesOf(jobId);
    expect(memories[0]!.provenance.source_url).toBe(`${site.url}/porto.html`);
    const all = memories.map((memory) => memory.text).join('\n');
    expect(all).toContain('Dom Luís I bridge');
    expect(all).not.toContain('SCRIPTSECRET');
    const csv = await ingest('URL', undefined, { kind: 'url', sourceUrl: `${site.url}/data.csv` });
    expectCompleted(csv.progress);
    expect((await memoriesOf(csv.jobId))[0]!.text).toContain('city: Lisbon | country: Portugal');
  });

  it('a "PDF" that is really a DOCX is read as the DOCX it is', async () => {
    const docx = await makeDocx([{ heading: 'Disguised', paragraphs: ['This Word file was uploaded as a PDF about Coimbra.'] }]);
    const { jobId, progress } = await ingest('PDF', docx);
    expectCompleted(progress);
    expect((await memoriesOf(jobId))[0]!.text).toBe('Disguised\nThis Word file was uploaded as a PDF about Coimbra.');
  });

  it('re-sending the same document rewrites the same memories, never duplicates', async () => {
    const text = 'Braga has the oldest cathedral in Portugal.\n\nGuimarães is called the cradle of the nation.';
    const first = await ingest('TXT', text, { documentId: 'north' });
    const second = await ingest('TXT', text, { documentId: 'north' });
    expectCompleted(second.progress);
    expect(second.sourceId).toBe(first.sourceId);
    const { count } = await h.runtime.es.count({ index: h.runtime.indices.memories, query: { term: { 'provenance.source_id': first.sourceId } } });
    expect(count).toBe(first.progress.counts.chunks);
  });

  it('keeps stage timings and counts in the status query and a summary in Elasticsearch', async () => {
    const { jobId, progress } = await ingest('MARKDOWN', markdownFixture);
    for (const name of ['fetch', 'parse', 'chunk', 'extract', 'resolve-entities', 'index'] as const) {
      expect(progress.stages[name]).toMatchObject({ state: 'completed' });
      expect(progress.stages[name].duration_ms).toBeGreaterThanOrEqual(0);
    }
    expect(progress.stages.chunk.count).toBe(4);
    expect(progress.stages.index.count).toBe(4);
    const attributes = (await h.jobs.handle('acme', jobId).describe()).typedSearchAttributes.getAll();
    expect(Object.fromEntries(attributes.map((pair) => [pair.key.name, pair.value]))).toMatchObject({
      CairnTenant: 'acme',
      CairnSourceKind: 'file',
      CairnFormat: 'MARKDOWN',
      CairnDocumentType: 'document',
      CairnStatus: 'completed',
    });
    const summary = await h.runtime.es.get<{ status: string; memories_created: number }>({ index: h.runtime.indices.jobs, id: `acme:${jobId}` });
    expect(summary._source).toMatchObject({ status: 'completed', memories_created: 4 });
  });
});

function serve(routes: Record<string, [string, string]>): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const route = routes[req.url ?? ''];
    if (!route) return res.writeHead(404).end();
    res.setHeader('content-type', route[0]);
    res.end(route[1]);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    ),
  );
}
