// jwt: builds JSON Web Tokens for the auth tests with node:crypto: valid HS256 tokens and the
// usual forgeries (alg none, another algorithm in the header, a wrong signature, expired or
// not-yet-valid claims, no sub). No JWT library, so the forgeries are exactly what we say.
import crypto from 'node:crypto';

export const b64url = (buf) => Buffer.from(buf).toString('base64url');
const seg = (obj) => b64url(JSON.stringify(obj));
export const now = () => Math.floor(Date.now() / 1000);

const HMAC = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

// Signs header.payload with HMAC `hash` (sha256/384/512) and `secret`.
function hmac(hash, secret, input) {
  return b64url(crypto.createHmac(hash, secret).update(input).digest());
}

// A token whose header is `header` (alg decides the HMAC used; non-HMAC algs get an HS256
// signature, which is what an algorithm-confusion attacker would send).
export function sign(claims, secret, header = { alg: 'HS256', typ: 'JWT' }) {
  const input = `${seg(header)}.${seg(claims)}`;
  const hash = HMAC[header.alg] ?? 'sha256';
  return `${input}.${hmac(hash, secret, input)}`;
}

export function hs256(claims, secret) {
  return sign(claims, secret, { alg: 'HS256', typ: 'JWT' });
}

// An HS256 token from JSON texts taken as they are, so that they can hold what
// JSON.stringify never writes (a key twice).
export function hs256Raw(headerJson, claimsJson, secret) {
  const input = `${b64url(headerJson)}.${b64url(claimsJson)}`;
  return `${input}.${hmac('sha256', secret, input)}`;
}

export const forge = {
  // Valid for `sub`, an hour from now.
  valid: (secret, sub, extra = {}) => hs256({ sub, iat: now(), exp: now() + 3600, ...extra }, secret),
  algNone: (sub) => `${seg({ alg: 'none', typ: 'JWT' })}.${seg({ sub, exp: now() + 3600 })}.`,
  wrongAlg: (secret, sub, alg) => sign({ sub, exp: now() + 3600 }, secret, { alg, typ: 'JWT' }),
  badSignature: (secret, sub) => hs256({ sub, exp: now() + 3600 }, `${secret}-not`),
  // Signature bytes flipped, header and claims intact.
  tamperedSignature: (secret, sub) => {
    const t = hs256({ sub, exp: now() + 3600 }, secret);
    const [h, p, s] = t.split('.');
    const raw = Buffer.from(s, 'base64url');
    raw[0] ^= 0xff;
    return `${h}.${p}.${b64url(raw)}`;
  },
  // exp/nbf far beyond the 5 s default leeway.
  expired: (secret, sub) => hs256({ sub, iat: now() - 7200, exp: now() - 600 }, secret),
  notYetValid: (secret, sub) => hs256({ sub, nbf: now() + 600, exp: now() + 3600 }, secret),
  noSub: (secret) => hs256({ name: 'nobody', exp: now() + 3600 }, secret),
  malformed: ['not-a-token', 'a.b', `${b64url('{"alg":')}.${b64url('{}')}.${b64url('x')}`],
};

// An RS256 or ES256 token signed with a node:crypto private KeyObject; `kid` goes in the
// header when given. ES256 signatures are r||s (JWS), not DER.
export function signAsym(claims, privateKey, alg, kid) {
  const header = { alg, typ: 'JWT', ...(kid ? { kid } : {}) };
  const input = `${seg(header)}.${seg(claims)}`;
  const opts = alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey;
  return `${input}.${b64url(crypto.sign('sha256', Buffer.from(input), opts))}`;
}

// A fresh signing key as { alg, kid, privateKey, jwk } (jwk: the public key as a JWKS entry).
export function newSigningKey(alg, kid) {
  const { privateKey, publicKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { alg, kid, privateKey, publicKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
}
