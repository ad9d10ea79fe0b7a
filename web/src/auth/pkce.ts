// PKCE (RFC 7636) with S256, on WebCrypto.

function cryptoApi(): Crypto {
  const c = globalThis.crypto;
  if (!c || !c.getRandomValues) throw new Error('this browser has no WebCrypto');
  return c;
}

export function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A random URL-safe string of `bytes` random bytes (32 bytes → 43 characters). */
export function randomString(bytes = 32): string {
  const buf = new Uint8Array(bytes);
  cryptoApi().getRandomValues(buf);
  return base64url(buf);
}

/** A code verifier: 43 characters of the unreserved set, as RFC 7636 asks (43–128). */
export function createVerifier(): string {
  return randomString(32);
}

/** The S256 code challenge of a verifier: BASE64URL(SHA-256(ASCII(verifier))). */
export async function challengeS256(verifier: string): Promise<string> {
  const subtle = cryptoApi().subtle;
  if (!subtle) throw new Error('WebCrypto digest is unavailable (the console must be served over HTTPS or from localhost)');
  const digest = await subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}
