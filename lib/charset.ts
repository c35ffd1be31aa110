/** Character sets as HTTP declares them: read by the API for JSON bodies and by the text parser for uploads. */

/** The `charset` parameter of a Content-Type, if any. */
export const charsetOf = (contentType: string | undefined) => /;\s*charset\s*=\s*"?([\w.:-]+)"?/i.exec(contentType ?? '')?.[1];

/** An encoding TextDecoder knows, by the label given; undefined for none or an unknown label. */
export function supported(label: string | undefined): string | undefined {
  if (!label) return undefined;
  try {
    return new TextDecoder(label).encoding;
  } catch {
    return undefined;
  }
}
