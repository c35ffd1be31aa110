/** The text with its accents dropped ("João" → "Joao"): compatibility forms decomposed, combining marks removed. */
export const withoutAccents = (text: string): string => text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
