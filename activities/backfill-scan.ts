import { getJson, putJson } from '../lib/blob/store';
import { importRoot, listImportFiles } from '../lib/backfill/import-sources';
import type { ImportSpec, ScanState, ScanTarget } from '../lib/backfill/request';
import { closeIndexScan, nextIndexPage, openIndexScan } from '../lib/backfill/scan';
import { storedEmbedding } from '../lib/elasticsearch/indices';
import { badInput } from '../lib/errors';
import type { ActivityDeps } from './deps';

export const importListKey = (tenant: string, runId: string) => `${tenant}/backfills/${runId}/sources.json`;

/**
 * Opening, paging and closing a backfill's walk. Memories and sources are walked in Elasticsearch
 * (point-in-time + search_after); an import walks the list of sources written once at its start.
 */
export function createBackfillScanActivities(deps: ActivityDeps) {
  function resolveTarget(target: ScanTarget): ScanTarget {
    if (target.index || target.of === 'list') return target;
    return { ...target, index: target.of === 'memories' ? deps.indices.memories : deps.indices.sources };
  }

  async function openBackfillScan(target: ScanTarget): Promise<ScanState> {
    if (target.of === 'list') {
      const items = await getJson<string[]>(deps.blobs, target.listKey!);
      return { target, offset: 0, total: items.length, done: items.length === 0 };
    }
    const resolved = resolveTarget(target);
    // The walk covers everything recorded before it began: source records are written without waiting
    // for a refresh (they are read by id), so one that a job wrote a moment ago is made searchable first.
    if (resolved.of === 'sources') await deps.es.indices.refresh({ index: resolved.index! });
    return openIndexScan(deps.es, resolved);
  }

  async function nextBackfillPage(state: ScanState, size: number): Promise<{ items: string[]; state: ScanState }> {
    if (state.target.of === 'list') {
      const all = await getJson<string[]>(deps.blobs, state.target.listKey!);
      const offset = state.offset ?? 0;
      const items = all.slice(offset, offset + size);
      return { items, state: { ...state, offset: offset + items.length, done: offset + items.length >= all.length } };
    }
    const { ids, state: next } = await nextIndexPage(deps.es, state, size);
    return { items: ids, state: next };
  }

  async function closeBackfillScan(state: ScanState): Promise<void> {
    if (state.target.of !== 'list') await closeIndexScan(deps.es, state);
  }

  /** Writes the import's source list once, so pages and retries read the same fixed list. */
  async function listImportSources(tenant: string, runId: string, spec: ImportSpec): Promise<ScanTarget> {
    const items: string[] = [...(spec.urls ?? []).map((url) => `url:${url}`)];
    if (spec.folder) {
      const files = await listImportFiles(importRoot(deps.config.CAIRN_DATA_DIR, tenant), spec.folder);
      items.push(...files.map((file) => `file:${file}`));
    }
    if (items.length === 0) throw badInput('the import found no sources: no URLs and no importable files in the folder');
    const listKey = importListKey(tenant, runId);
    await putJson(deps.blobs, listKey, items);
    return { of: 'list', listKey };
  }

  /**
   * Before a walk over memories: indices created before the per-run marker existed get the field (adding
   * a field is always compatible), and an in-place re-embed checks it would not mix two models' vectors.
   */
  async function ensureBackfillMarker(kind: 'reembed' | 'reindex' = 'reindex'): Promise<void> {
    await deps.es.indices.putMapping({ index: deps.indices.memories, properties: { backfill_runs: { type: 'keyword' } } });
    if (kind !== 'reembed') return;
    if (!deps.embedder) throw badInput('no embedding model is configured on the worker: there is nothing to re-embed with');
    const stored = await storedEmbedding(deps.es, deps.indices.memories);
    if (stored && (stored.model !== deps.embedder.model || stored.dims !== deps.embedder.dims)) {
      throw badInput(
        `the memories index is built for ${stored.model} (${stored.dims} dims), the worker embeds with ${deps.embedder.model} ` +
          `(${deps.embedder.dims} dims): run a "reindex" backfill, which re-embeds into a new index version`,
      );
    }
  }

  return { openBackfillScan, nextBackfillPage, closeBackfillScan, listImportSources, ensureBackfillMarker };
}
