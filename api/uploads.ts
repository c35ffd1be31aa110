import type { RequestHandler } from 'express';
import multer from 'multer';
import { assertWithinFormatLimit, MAX_UPLOAD_BYTES, type Format } from '../lib/domain/ingest';
import { badInput, payloadTooLarge, unsupportedMediaType } from '../lib/errors';

export type FileFormat = Exclude<Format, 'URL' | 'CONVERSATION'>;
export const FILE_FORMATS = ['TXT', 'MARKDOWN', 'HTML', 'JSON', 'CSV', 'PDF', 'DOCX'] as const satisfies readonly FileFormat[];

const BY_EXTENSION: Record<string, FileFormat> = {
  txt: 'TXT',
  text: 'TXT',
  md: 'MARKDOWN',
  markdown: 'MARKDOWN',
  html: 'HTML',
  htm: 'HTML',
  json: 'JSON',
  csv: 'CSV',
  pdf: 'PDF',
  docx: 'DOCX',
};

const BY_MIME: Record<string, FileFormat> = {
  'text/plain': 'TXT',
  'text/markdown': 'MARKDOWN',
  'text/x-markdown': 'MARKDOWN',
  'text/html': 'HTML',
  'application/xhtml+xml': 'HTML',
  'application/json': 'JSON',
  'text/csv': 'CSV',
  'application/csv': 'CSV',
  'application/pdf': 'PDF',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'DOCX',
};

/** Generic MIME types say nothing about the format: the file name decides then. */
const GENERIC_MIME = new Set(['application/octet-stream', 'binary/octet-stream', '']);

export interface UploadedFile {
  buffer: Buffer;
  originalname: string;
  mimetype: string;
  size: number;
}

/**
 * The format of an upload: the declared one when given, else from the file name, else the MIME
 * type. A type Cairn cannot parse is a 415; bytes over the format's limit are a 413; binary formats
 * must carry their signature, so a renamed file is refused here rather than failing in the pipeline.
 */
export function detectFileFormat(file: UploadedFile, declared?: string): FileFormat {
  // The bytes of a binary format say what it is, whatever was declared (a PDF sent as format=TXT was
  // parsed as the PDF it is, but answered, and its memories recorded, as TXT). Text formats are
  // readings of the same bytes: there the declared one is the caller's choice.
  const upper = declared?.toUpperCase();
  if (upper && !(FILE_FORMATS as readonly string[]).includes(upper)) throw unsupportedMediaType(`the ${declared} format is not supported; use one of ${FILE_FORMATS.join(', ')}`);
  let format: FileFormat | undefined = binaryFormatOf(file.buffer) ?? (upper as FileFormat | undefined);
  const extension = /\.([A-Za-z0-9]+)$/.exec(file.originalname ?? '')?.[1]?.toLowerCase();
  const mime = (file.mimetype ?? '').split(';')[0]!.trim().toLowerCase();
  format ??= (extension && BY_EXTENSION[extension]) || (GENERIC_MIME.has(mime) ? undefined : BY_MIME[mime]);
  if (!format) throw unsupportedMediaType(`cannot ingest ${file.originalname || 'the file'} (${mime || 'no content type'}); supported formats: ${FILE_FORMATS.join(', ')}`);
  assertWithinFormatLimit(format, file.size);
  if (file.size === 0) throw badInput('the uploaded file is empty');
  if (format === 'PDF' && file.buffer.subarray(0, 5).toString('latin1') !== '%PDF-') throw unsupportedMediaType('the file is declared PDF but is not a PDF');
  if (format === 'DOCX' && file.buffer.subarray(0, 2).toString('latin1') !== 'PK') throw unsupportedMediaType('the file is declared DOCX but is not a DOCX (zip) document');
  return format;
}

/** PDF or DOCX by their signatures (`%PDF-`, a ZIP's `PK\x03\x04`); undefined for anything else. */
function binaryFormatOf(bytes: Buffer): FileFormat | undefined {
  if (bytes.subarray(0, 5).toString('latin1') === '%PDF-') return 'PDF';
  if (bytes.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) return 'DOCX';
  return undefined;
}

/**
 * Multipart parsing held in memory up to the largest per-format limit (+1 byte so "over the limit"
 * is detectable); the per-format limit is applied once the format is known.
 */
export function multipartFile(field = 'file'): RequestHandler {
  // A file name sent as UTF-8 without RFC 5987's filename*= (what browsers, curl and requests send) is
  // UTF-8: multer's default, latin1, stored "Zürich.txt" as "ZÃ¼rich.txt".
  const upload = multer({ storage: multer.memoryStorage(), defParamCharset: 'utf8', limits: { fileSize: MAX_UPLOAD_BYTES + 1, files: 1, fields: 50, fieldSize: 64 * 1024 } }).single(field);
  return (req, res, next) => {
    const type = req.headers['content-type'] ?? '';
    if (!/^multipart\/form-data/i.test(type)) {
      return next(unsupportedMediaType(`send multipart/form-data (fields as parts, a file in the "${field}" part), not ${type.split(';')[0] || 'a body without a content type'}`));
    }
    upload(req, res, (error: unknown) => {
      if (!error) return next();
      const code = (error as { code?: string }).code;
      if (code === 'LIMIT_FILE_SIZE') return next(payloadTooLarge(`files are limited to ${MAX_UPLOAD_BYTES / (1024 * 1024)} MB`));
      if (code === 'LIMIT_UNEXPECTED_FILE') return next(badInput(`unexpected file field "${(error as { field?: string }).field}"; send the file as "${field}"`));
      if (code?.startsWith('LIMIT_')) return next(badInput(`multipart limit exceeded: ${(error as Error).message}`));
      next(badInput(`malformed multipart body: ${(error as Error).message}`));
    });
  };
}

/** Multipart fields are strings: a JSON-valued field (scope, metadata) is parsed, and a bad one is a 400. */
export function jsonField(value: unknown, name: string): unknown {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') return value;
  let proto = false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value, (key, inner) => {
      if (key === '__proto__') proto = true;
      return inner;
    });
  } catch {
    throw badInput(`${name}: must be a JSON string`);
  }
  // As in JSON bodies (api/errors.ts jsonBody): a "__proto__" key would vanish when the field is read.
  if (proto) throw badInput(`${name}: "__proto__" is not allowed as a key`);
  return parsed;
}
