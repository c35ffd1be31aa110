// Every workflow the worker registers. Workflow code runs in Temporal's deterministic sandbox:
// it imports activity *types* only.
export { ingestWorkflow, statusQuery } from './ingest';
export { backfillWorkflow, backfillProgressQuery } from './backfill';
export { webhookDeliveryWorkflow } from './webhooks';
