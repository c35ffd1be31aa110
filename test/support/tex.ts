import type { Harness } from './harness';

/** An access token as Tex(api_key=…, user_id=…) gets it: POST /auth/token-exchange with no Authorization header. */
export async function texToken(h: Harness, user: string, apiKey = h.keys.acme): Promise<string> {
  return (await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: apiKey, user_id: user } })).body.access_token as string;
}

/** A call under /compat/tex, as the SDK makes it with a token or the key. */
export const texCall = (h: Harness) => (method: string, path: string, key: string, body?: unknown) => h.api(method, `/compat/tex${path}`, { key, body });
