/**
 * Fields an answer carries that its published JSON Schema does not name, as paths (`results[0].score`).
 * The document's objects say `additionalProperties: false`, so a strict client would refuse them; zod's
 * parse, which strips unknown keys, does not notice them.
 */
type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
};

export function undocumentedFields(schema: JsonSchema, value: unknown, at = ''): string[] {
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) {
    // The branch that fits best: one that names every field, else the one that misses fewest.
    const found = branches.map((branch) => undocumentedFields(branch, value, at));
    return found.reduce((best, next) => (next.length < best.length ? next : best), found[0] ?? []);
  }
  if (schema.allOf) {
    const properties = Object.assign({}, ...schema.allOf.map((part) => part.properties ?? {}));
    const closed = schema.allOf.every((part) => part.additionalProperties === false);
    return undocumentedFields({ properties, additionalProperties: !closed }, value, at);
  }
  if (Array.isArray(value)) return schema.items ? value.flatMap((item, i) => undocumentedFields(schema.items!, item, `${at}[${i}]`)) : [];
  if (value === null || typeof value !== 'object' || !schema.properties) return [];
  return Object.entries(value).flatMap(([key, field]) => {
    const path = at ? `${at}.${key}` : key;
    const property = schema.properties![key];
    if (property) return undocumentedFields(property, field, path);
    if (schema.additionalProperties === false) return [path];
    return typeof schema.additionalProperties === 'object' ? undocumentedFields(schema.additionalProperties, field, path) : [];
  });
}
