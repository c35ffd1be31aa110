import type { Client } from '@elastic/elasticsearch';
import { randomUUID } from 'node:crypto';
import { getDocument, isVersionConflict } from './elasticsearch/client';
import { sha256 } from './ids';

interface StoredReceipt<T> {
  tenant: string;
  created_at: string;
  receipt: T;
}

/**
 * The receipts of deletions a tenant asked for (Tex's `/me/deletions`), each under its request id:
 * read back by id within the tenant, never searched. A request sent with an idempotency key has its
 * id derived from it, so the same key sent again finds the receipt of the first.
 */
export class DeletionReceipts<T extends object> {
  constructor(
    private readonly es: Client,
    private readonly index: string,
  ) {}

  static requestId(tenant: string, idempotencyKey: string | undefined): string {
    return `del_${idempotencyKey === undefined ? randomUUID().replaceAll('-', '') : sha256('deletion', tenant, idempotencyKey).slice(0, 32)}`;
  }

  async get(tenant: string, requestId: string): Promise<T | undefined> {
    return (await getDocument<StoredReceipt<T>>(this.es, { index: this.index, id: requestId }, tenant))?.source.receipt;
  }

  /**
   * Stores the receipt under its id, unless one is stored there already (the same idempotency key
   * sent twice at once): the receipt kept under the id, this one or the first.
   */
  async keep(tenant: string, requestId: string, receipt: T): Promise<T> {
    const document: StoredReceipt<T> = { tenant, created_at: new Date().toISOString(), receipt };
    try {
      await this.es.create({ index: this.index, id: requestId, document });
      return receipt;
    } catch (error) {
      if (!isVersionConflict(error)) throw error;
      return (await this.get(tenant, requestId)) ?? receipt;
    }
  }
}
