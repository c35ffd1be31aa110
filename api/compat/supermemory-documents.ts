import type { Request, Router } from 'express';
import { z } from 'zod';
import { isFinalStatus, type JobProgress } from '../../lib/domain/job';
import { withinMetadataLimits, type IngestRequestInput } from '../../lib/domain/ingest';
import { badInput, CairnError, conflict, notFound, unsupportedMediaType } from '../../lib/errors';
import type { IngestContent } from '../../lib/job-request';
import type { IngestJobs, StartedJob } from '../../lib/jobs';
import { requestOfRecord } from '../../lib/source-records';
import type { SourceStore } from '../../lib/sources';
import { principalOf, requirePermission } from '../auth';
import { idParam, parseWith } from '../errors';
import { detectFileFormat, FILE_FORMATS, jsonField, multipartFile } from '../uploads';
import type { Containers } from './containers';

/**
 * supermemory's documents (`client.add`, `client.documents.get|update|delete|uploadFile` of its SDKs): outside the seed,
 * which covers only conversations, but the call its users make first. Shapes from the `supermemory`
 * npm SDK's types (4.25). A document's id is the id of the job that ingests it: each add is one.
 */
export const Tag = z.string().min(1).max(255);

/** A document's id (its job's), as sent in a body. */
export const DocumentId = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'not a document id');

/** supermemory's filepath filter: a path, or with a trailing "/" every path under it. */
export const filepathFilter = (path: string | undefined) => (path?.endsWith('/') ? { file_name_prefix: path } : { file_name: path });

export const SupermemoryAddRequest = z.object({
  /** Text, or a URL to fetch ("a URL to a website, a PDF, …": its type is read from what it answers). */
  content: z.string().min(1),
  containerTag: Tag.optional(),
  /** Deprecated by supermemory in favour of containerTag; both are taken. */
  containerTags: z.array(Tag).max(100).optional(),
  /** The caller's own id: adding it again replaces the document's earlier version (a new version of one source). */
  customId: z.string().min(1).max(255).optional(),
  /** Kept as the document's file name (read back as `filepath`). */
  filepath: z.string().min(1).max(1000).optional(),
  metadata: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]))
    .superRefine(withinMetadataLimits)
    .optional(),
  /** Accepted and not used: Cairn's extraction takes no guidance (yet). */
  entityContext: z.string().max(1500).optional(),
  taskType: z.enum(['memory', 'superrag']).optional(),
});

/** `documents.update()`: what changes; nothing at all processes the document's current content again. */
export const SupermemoryDocumentUpdateRequest = z.object({
  /** New text, or a URL to fetch; without it, the document's stored content (or URL) is read again. */
  content: SupermemoryAddRequest.shape.content.optional(),
  containerTag: Tag.optional(),
  containerTags: SupermemoryAddRequest.shape.containerTags,
  /** Only the document's own: a customId names the document, it is not changed by an update. */
  customId: SupermemoryAddRequest.shape.customId,
  filepath: SupermemoryAddRequest.shape.filepath,
  /** Takes the place of the document's metadata; without it, the document keeps its own. */
  metadata: SupermemoryAddRequest.shape.metadata,
  taskType: SupermemoryAddRequest.shape.taskType,
});

export const SupermemoryAddResponse = z.object({ id: z.string(), status: z.literal('queued') });

/** How a surface answers a document it took (added, updated, uploaded), given the job processing it: the document's id is its job's. */
export type AcceptedDocument = (jobId: string) => z.infer<typeof SupermemoryAddResponse>;
export const supermemoryAccepted: AcceptedDocument = (jobId) => ({ id: jobId, status: 'queued' });

/** `documents.uploadFile()`'s form fields (multipart strings; containerTags and metadata as JSON). */
export const SupermemoryUploadFields = z.object({
  containerTag: Tag.optional(),
  /** A JSON array of tags, or one tag. */
  containerTags: z.union([Tag, z.array(Tag).max(100)]).optional(),
  filepath: z.string().min(1).max(1000).optional(),
  /** `text` or `pdf` (the others name kinds Cairn does not read: images, video, connectors). */
  fileType: z.string().max(50).optional(),
  metadata: SupermemoryAddRequest.shape.metadata,
  mimeType: z.string().max(255).optional(),
  taskType: z.enum(['memory', 'superrag']).optional(),
  useAdvancedProcessing: z.string().optional(),
});

/** supermemory's fileType as Cairn's format: pdf is PDF, text is read from the file's name or type. */
function declaredFormat(fileType: string | undefined): string | undefined {
  if (fileType === undefined || fileType === 'text') return undefined;
  if (fileType === 'pdf') return 'PDF';
  throw unsupportedMediaType(`fileType ${fileType} is not supported: Cairn reads text and pdf files (${FILE_FORMATS.join(', ')})`);
}

/** A JSON-array field sent as one plain string (supermemory's containerTags): that string, as a list of one. */
function tagsField(value: unknown): unknown {
  return typeof value === 'string' && !value.trimStart().startsWith('[') ? value : jsonField(value, 'containerTags');
}

export const DOCUMENT_STATUSES = ['unknown', 'queued', 'extracting', 'chunking', 'embedding', 'indexing', 'done', 'failed'] as const;

/** What a document is, in supermemory's words: fetched from a URL, a PDF, or text (documents, files, conversations). */
export const DocumentKind = z.enum(['text', 'pdf', 'webpage']);
export const documentKind = (of: { kind?: string; format?: string }) => (of.kind === 'url' ? 'webpage' : of.format === 'PDF' ? 'pdf' : 'text');

export const SupermemoryDocument = z.object({
  id: z.string(),
  connectionId: z.null(),
  content: z.null(),
  createdAt: z.string(),
  customId: z.string().nullable(),
  filepath: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  ogImage: z.null(),
  raw: z.null(),
  source: z.string().nullable(),
  spatialPoint: z.null(),
  status: z.enum(DOCUMENT_STATUSES),
  summary: z.null(),
  taskType: z.literal('memory'),
  title: z.string().nullable(),
  type: DocumentKind,
  updatedAt: z.string(),
  containerTags: z.array(z.string()),
  url: z.string().nullable(),
});

/** A single line that is an http(s) URL is fetched; anything else is the document's text. */
const isUrl = (content: string) => /^https?:\/\/\S+$/i.test(content.trim());

/** An add's content as Cairn ingests it: a URL to fetch, or text. */
function withContent<T extends Omit<IngestRequestInput, 'kind' | 'format'>>(request: T, content: string): IngestRequestInput & IngestContent {
  return isUrl(content) ? { ...request, kind: 'url', format: 'URL', sourceUrl: content.trim() } : { ...request, kind: 'document', format: 'TXT', content };
}

/** `client.add()` (and each document of `documents.batchAdd()`): one job, whose id is the document's, filed in the containers it names. */
export function addDocument(jobs: IngestJobs, containers: Containers, req: Request, body: z.infer<typeof SupermemoryAddRequest>): Promise<StartedJob> {
  const { tenant } = principalOf(req);
  const scope = containers.scopeOf(req, containerTagsOf(body));
  const common = { tenant, documentId: body.customId, fileName: body.filepath, scope, metadata: body.metadata, surface: containers.surface };
  return jobs.start(withContent(common, body.content), { versionOf: containers.sourceOfCustomId(tenant, scope, body.customId) });
}

/** The container a read by id names (`?containerTag=`, as Tex's SDK sends it with `documents.get|delete`). */
const ContainerQuery = z.object({ containerTag: Tag.optional() });
export const containerQueried = (req: Request) => parseWith(ContainerQuery, req.query).containerTag;

/** A document's job, when it is in the request's containers: another container's, as another tenant's, is not found. */
export async function heldDocument(jobs: IngestJobs, containers: Containers, req: Request, id: string, tag?: string): Promise<JobProgress> {
  const progress = await jobs.progressOrThrow(principalOf(req).tenant, id);
  if (!containers.holds(req, progress.scope, tag)) throw notFound(`document ${id}`);
  return progress;
}

/** `documents.delete()`: the document's source with its memories (as DELETE /v1/sources/:id); 409 while its job runs. */
export async function deleteDocument(sources: SourceStore, tenant: string, progress: JobProgress): Promise<void> {
  try {
    await sources.delete(tenant, progress.source_id);
  } catch (error) {
    // A job that stored nothing (failed before indexing), or a document deleted already: nothing left to delete.
    if (!(error instanceof CairnError && error.code === 'not_found' && isFinalStatus(progress.status))) throw error;
  }
}

/**
 * `documents.update()`: a new version of the document's source, as an add under its customId is (the
 * earlier version's memories go once it is done), whatever the source was keyed by; the new version's job.
 */
export async function updateDocument(
  deps: { jobs: IngestJobs; sources: SourceStore; containers: Containers },
  req: Request,
  id: string,
  body: z.infer<typeof SupermemoryDocumentUpdateRequest>,
  /** The container the caller names the document in, when it names one (it must be the document's). */
  tag?: string,
): Promise<StartedJob> {
  const { jobs, sources, containers } = deps;
  const { tenant } = principalOf(req);
  const progress = await heldDocument(jobs, containers, req, id, tag);
  const record = await sources.record(tenant, progress.source_id);
  if (!record && progress.status === 'completed') throw notFound(`document ${id} (deleted)`);
  if (!record) throw conflict(isFinalStatus(progress.status) ? `document ${id} stored nothing (it ${progress.status}): add it again` : `document ${id} is still being processed: update it once it is done`);
  // A conversation is what its sends said, turn by turn (a Tex session is built up by many writes):
  // no one stored upload holds it to read again, and its own surface keeps its turns' identities.
  if (record.kind === 'conversation') {
    throw badInput(`document ${id} is a conversation: it is updated by sending it again where it was sent (supermemory's POST /v4/conversations with its conversationId)`);
  }
  if (body.customId !== undefined && body.customId !== record.document_id) throw badInput(`customId: a document keeps the customId it was added with (${record.document_id ?? 'none'}); add the content under the new one instead`);
  const current = requestOfRecord(tenant, record, containers.surface);
  if (!current.success) throw conflict(`document ${id}'s stored record cannot be read back as a request; add it again`);
  const stored = current.data;
  const tags = containerTagsOf(body);
  const changes = {
    surface: containers.surface,
    ...(tags ? { scope: { ...stored.scope, ...containers.scopeOf(req, tags) } } : {}),
    ...(body.metadata ? { metadata: body.metadata } : {}),
    ...(body.filepath ? { fileName: body.filepath } : {}),
  };
  // New content is read as an add reads it; without, the stored upload (or URL, fetched anew) again.
  const { documentId, documentDate, mode, categories, fileName, scope, metadata } = stored;
  const request = body.content === undefined ? { ...stored, ...changes } : withContent({ tenant, documentId, documentDate, mode, categories, fileName, scope, metadata, ...changes }, body.content);
  return jobs.start(request, { versionOf: progress.source_id });
}

/** containerTag and the deprecated containerTags, together; undefined when neither is sent. */
export function containerTagsOf(body: { containerTag?: string; containerTags?: string[] }): string[] | undefined {
  const tags = [...new Set([...(body.containerTag ? [body.containerTag] : []), ...(body.containerTags ?? [])])];
  return tags.length ? tags : undefined;
}

/** Where a job stands, in supermemory's words for a document's processing. */
export function documentStatus(progress: JobProgress): (typeof DOCUMENT_STATUSES)[number] {
  if (progress.status === 'completed') return 'done';
  if (progress.status === 'failed' || progress.status === 'cancelled') return 'failed';
  switch (progress.stage) {
    case null:
      return 'queued';
    case 'fetch':
    case 'parse':
      return 'extracting';
    case 'chunk':
      return 'chunking';
    case 'extract':
    case 'resolve-entities':
      return 'embedding';
    case 'index':
      return 'indexing';
  }
}

export function supermemoryDocumentRoutes(router: Router, jobs: IngestJobs, sources: SourceStore, containers: Containers, accepted: AcceptedDocument): void {
  router.post('/v3/documents', requirePermission('ingest'), async (req, res) => {
    const job = await addDocument(jobs, containers, req, parseWith(SupermemoryAddRequest, req.body));
    res.json(accepted(job.jobId));
  });

  router.patch('/v3/documents/:id', requirePermission('ingest'), async (req, res) => {
    const body = parseWith(SupermemoryDocumentUpdateRequest, req.body ?? {});
    const job = await updateDocument({ jobs, sources, containers }, req, idParam(req.params.id, 'a document id'), body);
    res.json(accepted(job.jobId));
  });

  router.post('/v3/documents/file', requirePermission('ingest'), multipartFile('file'), async (req, res) => {
    const fields = parseWith(SupermemoryUploadFields, { ...req.body, containerTags: tagsField(req.body?.containerTags), metadata: jsonField(req.body?.metadata, 'metadata') });
    const file = req.file;
    if (!file) throw badInput('send the file in the "file" part');
    // An explicit mimeType stands in for the part's own (the SDK sends one when asked).
    const format = detectFileFormat({ ...file, mimetype: fields.mimeType ?? file.mimetype }, declaredFormat(fields.fileType));
    const containerTags = containerTagsOf({ containerTag: fields.containerTag, containerTags: typeof fields.containerTags === 'string' ? [fields.containerTags] : fields.containerTags });
    const job = await jobs.start({
      tenant: principalOf(req).tenant,
      kind: 'file',
      format,
      documentType: format === 'PDF' ? 'pdf' : 'document',
      scope: containers.scopeOf(req, containerTags),
      metadata: fields.metadata,
      surface: containers.surface,
      fileName: fields.filepath ?? file.originalname,
      declaredContentType: file.mimetype,
      content: file.buffer,
    });
    res.json(accepted(job.jobId));
  });

  router.get('/v3/documents/:id', requirePermission('read'), async (req, res) => {
    const { tenant } = principalOf(req);
    const progress = await heldDocument(jobs, containers, req, idParam(req.params.id, 'a document id'), containerQueried(req));
    // The source record (metadata, title, file name) is written by the job as it ends; until then, what the job knows.
    const source = progress.status === 'completed' ? await sources.get(tenant, progress.source_id).catch(() => undefined) : undefined;
    res.json({
      id: progress.job_id,
      connectionId: null,
      content: null,
      createdAt: progress.created_at,
      customId: progress.document_id ?? null,
      filepath: source?.file_name ?? null,
      metadata: source?.metadata ?? null,
      ogImage: null,
      raw: null,
      source: progress.surface,
      spatialPoint: null,
      status: documentStatus(progress),
      summary: null,
      taskType: 'memory',
      title: source?.title ?? null,
      type: documentKind(progress),
      updatedAt: progress.updated_at,
      containerTags: containers.tagsOf(progress.scope),
      url: progress.source_url ?? null,
    });
  });

  router.delete('/v3/documents/:id', requirePermission('write'), async (req, res) => {
    const { tenant } = principalOf(req);
    await deleteDocument(sources, tenant, await heldDocument(jobs, containers, req, idParam(req.params.id, 'a document id'), containerQueried(req)));
    res.status(204).end();
  });
}
