// shard: where the router places a history stream among WSGATE_REDIS_SHARDS (router-svc/rt_shard:
// jump consistent hashing of a 64-bit FNV-1a hash of "<tag>:<name>"), for tests that need to
// know which clients a shard's failure touches. Must match rt_shard.c; shards.test.mjs checks
// it against the keys the router wrote.
const MASK = (1n << 64n) - 1n;

function fnv1a(h, text) {
  for (const b of Buffer.from(text, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 1099511628211n) & MASK;
  }
  return h;
}

export function jump(key, n) {
  let b = -1n;
  let j = 0n;
  let k = key;
  while (j < BigInt(n)) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & MASK;
    j = BigInt(Math.floor(Number(b + 1n) * (2 ** 31 / Number((k >> 33n) + 1n))));
  }
  return Number(b);
}

// tag: 'u' (a user's stream), 'b' (broadcast, name ''), 'c' (a channel).
export function shardOf(tag, name, nshards) {
  if (nshards <= 1) return 0;
  return jump(fnv1a(fnv1a(fnv1a(14695981039346656037n, tag), ':'), name), nshards);
}
