import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes on every ingest job, so the Temporal UI and the job listings can filter
 * by tenant, kind, format, document type and status. Safe to import from workflow code.
 */
export const TenantAttribute = defineSearchAttributeKey('CairnTenant', SearchAttributeType.KEYWORD);
export const SourceKindAttribute = defineSearchAttributeKey('CairnSourceKind', SearchAttributeType.KEYWORD);
export const FormatAttribute = defineSearchAttributeKey('CairnFormat', SearchAttributeType.KEYWORD);
export const DocumentTypeAttribute = defineSearchAttributeKey('CairnDocumentType', SearchAttributeType.KEYWORD);
export const StatusAttribute = defineSearchAttributeKey('CairnStatus', SearchAttributeType.KEYWORD);
export const JobKindAttribute = defineSearchAttributeKey('CairnJobKind', SearchAttributeType.KEYWORD);
/** The API surface that took the job (native, memsolus, …): a vendor's job listing shows only its own. */
export const SurfaceAttribute = defineSearchAttributeKey('CairnSurface', SearchAttributeType.KEYWORD);

export const CAIRN_SEARCH_ATTRIBUTES = [
  TenantAttribute,
  SourceKindAttribute,
  FormatAttribute,
  DocumentTypeAttribute,
  StatusAttribute,
  JobKindAttribute,
  SurfaceAttribute,
] as const;

export interface IngestJobTags {
  tenant: string;
  kind: string;
  format: string;
  documentType: string;
  surface?: string;
}

/** The search attributes every ingest job starts with, whether the API or a backfill starts it. */
export function ingestJobAttributes(tags: IngestJobTags) {
  return [
    { key: TenantAttribute, value: tags.tenant },
    { key: SourceKindAttribute, value: tags.kind },
    { key: FormatAttribute, value: tags.format },
    { key: DocumentTypeAttribute, value: tags.documentType },
    { key: StatusAttribute, value: 'queued' },
    { key: JobKindAttribute, value: 'ingest' },
    ...(tags.surface ? [{ key: SurfaceAttribute, value: tags.surface }] : []),
  ];
}
