/**
 * The first `max` UTF-16 code units of `text`, or one fewer where the cut would fall inside a
 * surrogate pair (an emoji, a CJK character outside the basic plane): half of one is no character,
 * and a lone surrogate is no valid UTF-8 when the text is stored or sent.
 */
export function clipChars(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
