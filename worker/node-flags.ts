/**
 * Node flags every worker process runs with (npm run dev, bench:api; package.json's start:worker and
 * benches and docker-compose.yml repeat them). 64 MB young-generation semi-spaces instead of V8's
 * 16: what the worker allocates is mostly short-lived (tagging, chunking, request bodies), and over a
 * bench:ingest run its scavenges fell from 234 to 76 and its GC pauses from 1.34 s to 0.69 s, for
 * ~150 MB more peak RSS.
 */
export const WORKER_NODE_FLAGS = ['--max-semi-space-size=64'];
