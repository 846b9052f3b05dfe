// Type-checks an application's use of @wsgate/client through the package's own "exports"
// (self-reference by name), so the published declarations are what is checked: a wrong
// option, method or return type here fails `npm run check-types`.
import { WsgateClient, tokenExp, parseRetryAfter } from '@wsgate/client';
import type { WsgatePositions, WsgateState, WsgateStats } from '@wsgate/client';

const client = new WsgateClient({
  urls: ['wss://gw.example/ws'],
  getToken: async () => 'eyJ...',
  batch: true,
  backoffCapMs: 10_000,
});
const state: WsgateState = client.state;
const positions: WsgatePositions = client.positions;
const stats: WsgateStats = client.stats;
const off: () => void = client.on('message', (f) => console.log(f.content));
const sent: boolean = client.sendMessage('bob', 'hi');
const unsubscribe = client.subscribe('chat:general', (p) => console.log(p.seq), { since: 3 });
const asked: boolean = client.presence('chat:general');
const reply: Promise<any> = client.request('echo', { x: 1 }, { timeoutMs: 500 });
const exp: number | null = tokenExp('a.b.c');
const after: number | null = parseRetryAfter('retry_after=5');
client.connect();
client.close();
void [state, positions, stats, off, sent, unsubscribe, asked, reply, exp, after];
