import type OpenAI from 'openai';
import { z } from 'zod';
import type { Chunk } from '../domain/document';
import { MemoryType } from '../domain/memory';
import { countTokens } from '../chunking/tokens';
import { badInput, CairnError, upstreamFailure } from '../errors';
import type { ExtractedMemory, ExtractionContext, Extractor } from './extractor';
import { openAIFailure } from './openai-client';

/**
 * The wire shape the model must answer in. OpenAI's strict structured outputs need every property
 * required (absence is `null` or an empty list) and no integer bounds, hence plain numbers.
 */
export const ExtractionOutput = z.object({
  memories: z.array(
    z.object({
      chunk_index: z.number(),
      text: z.string(),
      type: MemoryType,
      confidence: z.number(),
      entities: z.array(z.object({ name: z.string(), type: z.enum(['person', 'place', 'organization', 'thing', 'event']) })),
      event_dates: z.array(z.string()),
    }),
  ),
});
export type ExtractionOutput = z.infer<typeof ExtractionOutput>;

const { $schema: _dialect, ...OUTPUT_SCHEMA } = z.toJSONSchema(ExtractionOutput) as Record<string, unknown>;

const INSTRUCTIONS = {
  fast:
    'For each numbered chunk, return exactly one memory whose text is the chunk text unchanged. ' +
    'Classify its type (fact, preference, episode, emotion, temporal_event), list the people, places and organisations it names, ' +
    'and resolve every date it mentions to YYYY-MM-DD using the reference date.',
  'long-range':
    'Extract every durable memory from the numbered chunks: facts about people, their preferences, emotions, episodes and ' +
    'dated events. Each memory is one self-contained sentence in the third person that names who it is about (never "I" or "he"). ' +
    'Resolve relative dates ("yesterday", "last week") to YYYY-MM-DD using the reference date and write the date into the text. ' +
    'Set chunk_index to the chunk the memory comes from, confidence between 0 and 1, and list the named entities.',
} as const;

/** Extraction through OpenAI structured outputs (or any compatible server), generated from the zod schema. */
export class OpenAIExtractor implements Extractor {
  readonly name: string;

  constructor(
    private readonly client: OpenAI,
    private readonly model: string,
    private readonly mode: 'fast' | 'long-range',
  ) {
    this.name = `openai-${mode}/${model}`;
  }

  async extract(chunks: Chunk[], context: ExtractionContext) {
    if (chunks.length === 0) return { memories: [], usage: { tokensIn: 0, tokensOut: 0 } };
    const system =
      `You extract memories for an AI agent's long-term memory. ${INSTRUCTIONS[this.mode]} ` +
      `Document type: ${context.documentType}. Reference date: ${context.referenceDate ?? 'unknown'}.`;
    // A turn's own time is the reference for its relative dates ("yesterday").
    const user = chunks.map((chunk) => `[chunk ${chunk.index}${chunk.timestamp ? `, said ${chunk.timestamp}` : ''}]\n${chunk.text}`).join('\n\n');
    let content: string | null | undefined;
    let finishReason: string | null | undefined;
    try {
      const completion = await this.client.chat.completions.create({
        model: this.model,
        temperature: 0,
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: user },
        ],
        response_format: { type: 'json_schema', json_schema: { name: 'memories', strict: true, schema: OUTPUT_SCHEMA } },
      });
      // No choice at all is the server failing this once (a retry asks again), not this content's answer.
      if (!completion.choices?.length) throw upstreamFailure('OpenAI extraction: the server answered with no choices');
      const message = completion.choices[0]?.message;
      content = message?.content;
      finishReason = completion.choices[0]?.finish_reason;
      // The model declining this content is the content's answer: asking again gets the same.
      if (message?.refusal) throw badInput(`OpenAI extraction: the model refused: ${message.refusal}`);
    } catch (error) {
      if (error instanceof CairnError) throw error;
      throw openAIFailure(error, 'OpenAI extraction');
    }
    const output = parseOutput(content, finishReason);
    const known = new Set(chunks.map((chunk) => chunk.index));
    const said = output.memories.filter((memory) => memory.text.trim());
    // A memory must name the chunk it came from (its provenance). With one chunk sent there is only
    // one it can be; a model naming none of the chunks sent misread the task: the batch is left out,
    // saying so, rather than completing with its memories silently dropped.
    const only = chunks.length === 1 ? chunks[0]!.index : undefined;
    const placed = said.map((memory) => (known.has(memory.chunk_index) || only === undefined ? memory : { ...memory, chunk_index: only }));
    const kept = placed.filter((memory) => known.has(memory.chunk_index));
    if (said.length > 0 && kept.length === 0) {
      throw badInput(`OpenAI extraction: the answer's memories name chunks that were not sent (${[...new Set(said.map((memory) => memory.chunk_index))].slice(0, 5).join(', ')}; sent ${[...known].slice(0, 5).join(', ')}…)`);
    }
    const memories: ExtractedMemory[] = kept
      .map((memory) => ({
        text: memory.text.trim(),
        type: memory.type,
        confidence: Math.min(1, Math.max(0, memory.confidence)),
        entities: memory.entities,
        eventDates: memory.event_dates.filter((date) => !Number.isNaN(Date.parse(date))),
        chunkIndex: memory.chunk_index,
      }));
    // Counted with tiktoken rather than taken from the answer: compatible servers often omit usage.
    return { memories, usage: { tokensIn: countTokens(system) + countTokens(user), tokensOut: countTokens(content ?? '') } };
  }
}

/**
 * The answer as memories. An answer that is not the schema's JSON is what this model says for this
 * content (at temperature 0 it says it again: cut off at its output limit, or a compatible server
 * that ignores strict schemas), so it is bad input — the batch is left out or the job fails, naming
 * why — not an outage to retry and pay for again.
 */
function parseOutput(content: string | null | undefined, finishReason: string | null | undefined): ExtractionOutput {
  if (finishReason === 'length') throw badInput('OpenAI extraction: the answer was cut off at the model\'s output limit (use smaller batches, BATCH_SIZE)');
  let raw: unknown;
  try {
    raw = JSON.parse(content ?? '');
  } catch {
    throw badInput('OpenAI extraction answered with text that is not JSON');
  }
  const parsed = ExtractionOutput.safeParse(raw);
  if (!parsed.success) throw badInput(`OpenAI extraction answer does not match the schema: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}
