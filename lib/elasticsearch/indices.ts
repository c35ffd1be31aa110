import type { Client, estypes } from '@elastic/elasticsearch';
import {
  INDEX_VERSIONS,
  apiKeysMapping,
  deletionsMapping,
  entitiesMapping,
  jobsMapping,
  memoriesMapping,
  sequencesMapping,
  sourcesMapping,
  spacesMapping,
  tombstonesMapping,
  webhooksMapping,
  type EmbeddingSpec,
  type IndexName,
} from './mappings';

/** Alias names; all reads and writes go through these. */
export interface IndexNames {
  memories: string;
  entities: string;
  sources: string;
  jobs: string;
  apikeys: string;
  webhooks: string;
  sequences: string;
  tombstones: string;
  spaces: string;
  deletions: string;
}

export function indexNames(prefix: string): IndexNames {
  return {
    memories: `${prefix}-memories`,
    entities: `${prefix}-entities`,
    sources: `${prefix}-sources`,
    jobs: `${prefix}-jobs`,
    apikeys: `${prefix}-apikeys`,
    webhooks: `${prefix}-webhooks`,
    sequences: `${prefix}-sequences`,
    tombstones: `${prefix}-tombstones`,
    spaces: `${prefix}-spaces`,
    deletions: `${prefix}-deletions`,
  };
}

export const versionedIndex = (alias: string, version: number) => `${alias}-v${version}`;

const SETTINGS: estypes.IndicesIndexSettings = {
  // One node locally; production clusters override replicas through index templates.
  number_of_shards: 1,
  number_of_replicas: 0,
};

/**
 * Indices searched while they are written refresh every second whether or not anyone searched lately:
 * recall right after an ingest, and every job's entity lookups, must not pay for a shard that went
 * search-idle. The others take Elasticsearch's default, the same second but skipped while nobody has
 * searched the index for 30 s: they are written without waiting (job summaries, source records,
 * sequences) and read by id in real time, and searched only by listings and deletes, which then wait
 * for the refresh they need. Those refreshes were a third of the node's refresh work during ingestion.
 */
export const ALWAYS_REFRESHED: readonly IndexName[] = ['memories', 'entities'];
export const ALWAYS_REFRESHED_INTERVAL = '1s';
const settingsOf = (name: IndexName): estypes.IndicesIndexSettings =>
  ALWAYS_REFRESHED.includes(name) ? { ...SETTINGS, refresh_interval: ALWAYS_REFRESHED_INTERVAL } : SETTINGS;

/**
 * Creates every index and alias that does not exist yet. Safe to call from every process at start-up:
 * a concurrent creator's "already exists" is treated as success. An existing index built for another
 * embedding model is left as it is: the process still starts (it may be the worker that runs the
 * reindex), and EmbeddingMatch (embedding-match.ts) keeps its vectors and ours apart until then.
 */
export async function ensureIndices(client: Client, prefix: string, embedding: EmbeddingSpec): Promise<IndexNames> {
  const names = indexNames(prefix);
  const mappings: Record<IndexName, estypes.MappingTypeMapping> = {
    memories: memoriesMapping(embedding),
    entities: entitiesMapping(embedding),
    sources: sourcesMapping,
    jobs: jobsMapping,
    apikeys: apiKeysMapping,
    webhooks: webhooksMapping,
    sequences: sequencesMapping,
    tombstones: tombstonesMapping,
    spaces: spacesMapping,
    deletions: deletionsMapping,
  };
  for (const name of Object.keys(mappings) as IndexName[]) {
    const alias = names[name];
    if (await client.indices.existsAlias({ name: alias })) {
      await addNewFields(client, alias, mappings[name]);
      if (!ALWAYS_REFRESHED.includes(name)) await dropExplicitRefresh(client, alias);
      continue;
    }
    const index = versionedIndex(alias, INDEX_VERSIONS[name]);
    try {
      await client.indices.create({ index, settings: settingsOf(name), mappings: mappings[name], aliases: { [alias]: { is_write_index: true } } });
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      if (!(await client.indices.existsAlias({ name: alias }))) await client.indices.putAlias({ index, name: alias });
    }
  }
  return names;
}

/**
 * Fields added to a mapping since the index was created (e.g. `stems`) are put in place: mappings are
 * strict, so without them every new document would be rejected. The vector field and `_meta` are left
 * alone: a different embedding model is a mismatch to reindex (EmbeddingMatch), not a mapping error.
 * An incompatible change fails here, loudly: that one needs a new index version.
 */
async function addNewFields(client: Client, alias: string, mapping: estypes.MappingTypeMapping): Promise<void> {
  const { embedding: _vector, ...properties } = mapping.properties ?? {};
  await client.indices.putMapping({ index: alias, properties });
}

/**
 * Indices created before ALWAYS_REFRESHED all had an explicit 1 s; the others go back to the default.
 * Any other interval was set by hand, and is kept.
 */
async function dropExplicitRefresh(client: Client, alias: string): Promise<void> {
  const settings = Object.values(await client.indices.getSettings({ index: alias, name: 'index.refresh_interval' }))[0]?.settings;
  if (settings?.index?.refresh_interval !== ALWAYS_REFRESHED_INTERVAL) return;
  // null puts the setting back to its default.
  await client.indices.putSettings({ index: alias, settings: { 'index.refresh_interval': null } });
}

/** The model and dims an index's mapping records for its vectors; undefined for indices without `_meta`. */
export async function storedEmbedding(client: Client, alias: string): Promise<EmbeddingSpec | undefined> {
  const mapping = await client.indices.getMapping({ index: alias });
  return embeddingOf(Object.values(mapping)[0]?.mappings?._meta);
}

/** The model and dims a mapping's `_meta` records; undefined when it records none. */
export function embeddingOf(meta: Record<string, unknown> | undefined): EmbeddingSpec | undefined {
  const { embedding_model: model, embedding_dims: dims } = (meta ?? {}) as { embedding_model?: string; embedding_dims?: number };
  if (!model || !dims) return undefined;
  return { model, dims };
}

function isAlreadyExists(error: unknown): boolean {
  const type = (error as { body?: { error?: { type?: string } } })?.body?.error?.type;
  return type === 'resource_already_exists_exception' || type === 'invalid_alias_name_exception';
}

/** Deletes every index behind a prefix (tests and `cairn reset` only). */
export async function deleteIndices(client: Client, prefix: string): Promise<void> {
  await client.indices.delete({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true }).catch(() => undefined);
}
