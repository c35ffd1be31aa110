import type { Client } from '@elastic/elasticsearch';
import type { EntityRef } from '../domain/memory';
import { writeMatching } from '../elasticsearch/matching-writes';
import { upstreamFailure } from '../errors';
import { Leases } from '../leases';
import { cosine } from '../models/embedder';
import { chooseEntity, type Candidate } from './candidates';
import { absorbedEntity, mentionOf, seenBefore, type EntityDoc } from './entity';
import { nameLookup, searchEntities, similarityLookup } from './lookup';
import { readEntities, type Stored } from './writer';

/** Reads again after a concurrent writer changed one of the two entities, this many times before the activity retries. */
const MERGE_ROUNDS = 20;
const REPOINT_PAGE = 500;
/** Pages of memories a repointing may lose to other writers (edits, re-ingests) before it gives up to a retry. */
const CONTENDED_REPOINTS = 20;

export interface SplitIndices {
  entities: string;
  memories: string;
  /** Where the lease of a merge is kept (lib/leases.ts). */
  sequences: string;
}

/** The lease a merge of an entity into another holds: merges of one entity take turns. */
const entityMerge = (loserId: string) => `entity-merge:${loserId}`;

/** Where the memories of a merged entity point now. */
type Successor = Pick<EntityRef, 'id' | 'type'>;

/** An entity with the merges into it not yet finished: the ids of their losers (not shown by the API). */
type Merging = EntityDoc & { merging?: string[] };
const unfinishedMerges = (doc: EntityDoc): string[] => (doc as Merging).merging ?? [];

/**
 * Entities split by batches that ran at once, made one. Two batches that first name one person
 * differently ("Jonathan Price", "Jonathan") at the same moment each create an entity, as neither
 * sees the other's. Once a batch's entities are written and searchable, each it first named looks
 * again: of two batches whose writes became searchable one after the other, the later one's look
 * finds the other's entity. Where the later-seen entity (`seenBefore`: an order every worker agrees
 * on) would have joined the earlier one had it come second, it is folded into it (names, merges,
 * sources), deleted, and the memories naming it are repointed.
 *
 * Safe to run twice at once or again (a retry): merges of one entity take turns (a lease), and each
 * step is conditional on the versions read and idempotent. A delete of the merged entity's sources
 * landing meanwhile changes (or deletes) it, so its delete fails and the merge reads again, taking
 * back the sources it had folded in that are gone. Memories written naming it after it is deleted
 * are repointed by their writer (followMerges).
 *
 * A merge is three writes (the survivor, the loser's delete, the memories repointed): the survivor
 * records the merge as begun (`merging`) in its own write, and forgets it only once the rest is done.
 * A worker dying in between (or the activity timing out) leaves the record, and the next resolve that
 * meets the survivor — the activity's retry, or any job naming it — finishes the merge (finishMerges):
 * the loser, once deleted, is found by nothing else, and memories naming it would name it for good.
 */
export class EntitySplits {
  private readonly leases: Leases;

  constructor(
    private readonly es: Client,
    private readonly indices: SplitIndices,
  ) {
    this.leases = new Leases(es, indices.sequences);
  }

  /**
   * Heals the splits of `entities` (written and searchable), leaving alone the other entities of
   * their batch (`batch`: those saw each other). Answers where each entity merged away went.
   */
  async heal(tenant: string, entities: EntityDoc[], batch: Set<string>): Promise<Map<string, Successor>> {
    const merged = new Map<string, Successor>();
    if (entities.length === 0) return merged;
    const around = await this.lookAround(tenant, entities, (_, other) => batch.has(other.id));
    // Entities seen after one of these that found no place when they were written: one may belong here.
    const later = [...new Map([...around.entries()].flatMap(([doc, found]) => found.filter((other) => seenBefore(doc, other.doc)).map((other) => [other.doc.id, other.doc]))).values()];
    const laterAround = await this.lookAround(tenant, later, createdTogether);
    for (const [doc, candidates] of [...around, ...laterAround]) {
      const winner = chooseEntity(candidates.filter((other) => seenBefore(other.doc, doc)), mentionOf(doc));
      if (!winner) continue;
      const successor = await this.leases.holding(tenant, entityMerge(doc.id), () => this.merge(tenant, doc.id, winner));
      if (successor) merged.set(doc.id, successor);
    }
    return merged;
  }

  /**
   * Finishes the merges into these entities that were begun and not finished (a worker died between
   * their writes): each loser deleted, the memories naming it repointed. Nothing to do, and no request,
   * for entities without one.
   */
  async finishMerges(tenant: string, entities: EntityDoc[]): Promise<void> {
    for (const doc of entities) {
      for (const loserId of unfinishedMerges(doc)) {
        await this.leases.holding(tenant, entityMerge(loserId), async () => {
          // Read again under the lease: the merge's own worker may have finished it meanwhile.
          const survivor = (await readEntities(this.es, this.indices.entities, [doc.id])).get(doc.id);
          if (survivor && unfinishedMerges(survivor.doc).includes(loserId)) await this.merge(tenant, loserId, doc.id);
        });
      }
    }
  }

  /**
   * After memories naming these entities were written: one merged away meanwhile (deleted after the
   * merge repointed the memories it found) has its memories repointed to where it went.
   */
  async followMerges(tenant: string, entityIds: string[]): Promise<void> {
    if (entityIds.length === 0) return;
    const { docs } = await this.es.mget({ index: this.indices.entities, ids: [...new Set(entityIds)], _source: false });
    for (const doc of docs) {
      if ('found' in doc && doc.found) continue;
      const successor = await this.successorOf(tenant, doc._id);
      if (successor) await this.repoint(tenant, doc._id, successor);
    }
  }

  /** Each entity's candidates, as a mention of its name would find them, but for itself and those `skip` leaves out. */
  private async lookAround(tenant: string, docs: EntityDoc[], skip: (doc: EntityDoc, other: EntityDoc) => boolean): Promise<Map<EntityDoc, Candidate[]>> {
    const bodies = docs.flatMap((doc) => [
      nameLookup(tenant, doc.normalized_name),
      ...(doc.embedding ? [similarityLookup(tenant, doc.embedding)] : []),
    ]);
    const found = await searchEntities(this.es, this.indices.entities, bodies);
    const around = new Map<EntityDoc, Candidate[]>();
    let next = 0;
    for (const doc of docs) {
      const hits = found.slice(next, (next += doc.embedding ? 2 : 1)).flat();
      const candidates = new Map<string, Candidate>();
      for (const { doc: other, score } of hits) {
        if (other.id === doc.id || skip(doc, other)) continue;
        const similarity = score ?? (doc.embedding && other.embedding ? cosine(doc.embedding, other.embedding) : undefined);
        candidates.set(other.id, { doc: other, score: Math.max(similarity ?? -1, candidates.get(other.id)?.score ?? -1) });
      }
      around.set(doc, [...candidates.values()]);
    }
    return around;
  }

  /**
   * Folds `loserId` into `winnerId` (or where that went), deletes it and repoints its memories; answers
   * where it went. Under the merge's lease, the loser found gone after this merge folded it in was
   * deleted with its sources (lib/entities/forget-sources.ts), not merged by another.
   */
  private async merge(tenant: string, loserId: string, winnerId: string): Promise<Successor | undefined> {
    let into = winnerId;
    // Sources this merge folded into the winner: those the loser loses meanwhile are taken back.
    let folded = new Set<string>();
    for (let round = 0; round < MERGE_ROUNDS; round++) {
      const stored = await readEntities(this.es, this.indices.entities, [into, loserId]);
      const winner = stored.get(into);
      const loser = stored.get(loserId);
      if (!winner) {
        const successor = await this.successorOf(tenant, into);
        if (!successor || successor.id === loserId) return undefined;
        into = successor.id;
        folded = new Set();
        continue;
      }
      const withdrawn = [...folded].filter((sourceId) => !loser?.doc.source_ids.includes(sourceId));
      const next = beginning(winner.doc, absorbedEntity(winner.doc, loser?.doc, withdrawn), loser?.doc);
      if (next) {
        if (!(await this.writeIf(winner, next))) continue;
        folded = new Set([...folded, ...(loser?.doc.source_ids ?? []).filter((sourceId) => !winner.doc.source_ids.includes(sourceId))].filter((sourceId) => !withdrawn.includes(sourceId)));
      }
      if (loser && !(await this.deleteIf(loser))) continue;
      const merged = next ?? winner.doc;
      // Gone some other way (its sources deleted), not into this winner: nothing to repoint.
      if (!merged.merged_from?.includes(loserId)) {
        await this.finished(into, loserId);
        return undefined;
      }
      const successor = { id: into, type: merged.type };
      await this.repoint(tenant, loserId, successor);
      await this.finished(into, loserId);
      return successor;
    }
    throw upstreamFailure(`entities ${loserId} and ${winnerId} kept changing while being merged; the activity will retry`);
  }

  /** The survivor forgets the merge of `loserId` as begun, the loser being deleted and its memories repointed. */
  private async finished(survivorId: string, loserId: string): Promise<void> {
    for (let round = 0; round < MERGE_ROUNDS; round++) {
      const survivor = (await readEntities(this.es, this.indices.entities, [survivorId])).get(survivorId);
      if (!survivor || !unfinishedMerges(survivor.doc).includes(loserId)) return;
      const { merging, ...doc } = survivor.doc as Merging;
      const left = merging!.filter((id) => id !== loserId);
      if (await this.writeIf(survivor, left.length > 0 ? { ...doc, merging: left } : doc)) return;
    }
    throw upstreamFailure(`entity ${survivorId} kept changing while its merge of ${loserId} was being finished; the activity will retry`);
  }

  private async writeIf(stored: Stored, doc: Merging): Promise<boolean> {
    const response = await this.es.index(
      { index: this.indices.entities, id: doc.id, document: doc, if_seq_no: stored.version.seqNo, if_primary_term: stored.version.primaryTerm, refresh: 'wait_for' },
      { ignore: [409] },
    );
    return response.result === 'updated';
  }

  private async deleteIf(stored: Stored): Promise<boolean> {
    const response = await this.es.delete(
      { index: this.indices.entities, id: stored.doc.id, if_seq_no: stored.version.seqNo, if_primary_term: stored.version.primaryTerm, refresh: 'wait_for' },
      { ignore: [404, 409] },
    );
    return response.result === 'deleted';
  }

  /** The one entity a merged entity went into (the one recording it among its merges). */
  private async successorOf(tenant: string, id: string): Promise<Successor | undefined> {
    const { hits } = await this.es.search<EntityDoc>({
      index: this.indices.entities,
      size: 2,
      _source: ['id', 'type'],
      query: { bool: { filter: [{ term: { tenant } }, { term: { merged_from: id } }] } },
    });
    if (hits.hits.length !== 1) return undefined;
    const { id: successorId, type } = hits.hits[0]!._source!;
    return { id: successorId, type };
  }

  /**
   * The memories naming `from` name `to` instead (the name each gave it stays), each conditional on the
   * version read: one changed meanwhile (an edit, a re-ingest) is read again on the next page.
   */
  private async repoint(tenant: string, from: string, to: Successor): Promise<void> {
    await writeMatching<{ entities?: EntityRef[] }>(this.es, {
      index: this.indices.memories,
      query: () => ({ bool: { filter: [{ term: { tenant } }, { term: { 'entities.id': from } }] } }),
      fields: ['entities'],
      pageSize: REPOINT_PAGE,
      writesOf: (hits) => hits.map((hit) => ({ update: { entities: repointed(hit._source?.entities ?? [], from, to) } })),
      what: `repoint a memory to entity ${to.id}`,
      contendedPages: CONTENDED_REPOINTS,
      exhausted: () => upstreamFailure(`memories naming entity ${from} kept changing while being repointed to ${to.id}; the activity will retry`),
    });
  }
}

/**
 * What the winner is written as when the loser (if still there) is merged into it: `absorbed` (the
 * winner with the loser folded in, if that changes it) recording the merge as begun — and those the
 * loser had begun, which are the winner's to finish once the loser is gone. Undefined when nothing
 * changes.
 */
function beginning(winner: EntityDoc, absorbed: EntityDoc | undefined, loser: EntityDoc | undefined): EntityDoc | undefined {
  const begun = unfinishedMerges(winner);
  const merging = [...new Set([...begun, ...(loser ? [loser.id, ...unfinishedMerges(loser)] : [])])];
  if (merging.length === begun.length) return absorbed;
  return { ...(absorbed ?? winner), merging } as Merging;
}

/** A memory's entity references with `from` named `to`, each entity once. */
function repointed(refs: EntityRef[], from: string, to: Successor): EntityRef[] {
  const byId = new Map<string, EntityRef>();
  for (const ref of refs) {
    const next = ref.id === from ? { ...ref, ...to } : ref;
    if (!byId.has(next.id)) byId.set(next.id, next);
  }
  return [...byId.values()];
}

/** Entities one batch created (they saw each other): first seen at one moment, for one source. */
function createdTogether(a: EntityDoc, b: EntityDoc): boolean {
  return a.first_seen_at === b.first_seen_at && a.source_ids[0] === b.source_ids[0];
}
