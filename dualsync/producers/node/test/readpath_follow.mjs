// Follower script of tests/test_readpath_polyglot.py (and a worked example of ReadPath):
//   REDIS_URL=redis://... node readpath_follow.mjs PREFIX ENTITY TTL_MS[,TTL_MS...]
// starts one ReadPath per TTL, each on its own app client (node-redis defaults: offline
// queue, reconnecting), polls mode(ENTITY) every 10 ms and prints JSON lines on stdout:
//   {"event":"ready","t":<epoch ms>,"modes":[...]}              all started and read once
//   {"event":"change","t":<epoch ms>,"client":i,"from":m,"mode":m} a client's mode changed
//   {"event":"report","t":<epoch ms>,"modes":[...]}             answer to a "report" line on stdin
// "quit" (or the end of stdin) closes everything and exits 0. Warnings go to stderr (console).

import { createInterface } from 'node:readline';
import { createClient } from 'redis';
import { ReadPath } from '../src/index.js';

const [prefix, entity, ttls] = process.argv.slice(2);
if (!prefix || !entity || !ttls) {
  console.error('usage: node readpath_follow.mjs PREFIX ENTITY TTL_MS[,TTL_MS...]');
  process.exit(2);
}
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const say = (obj) => process.stdout.write(`${JSON.stringify({ ...obj, t: Date.now() })}\n`);

const clients = [];
const paths = [];
for (const ttl of ttls.split(',')) {
  const client = createClient({ url });
  client.on('error', () => {}); // the app's own client: errors surface in its commands
  client.connect().catch(() => {}); // not awaited: an app whose Redis is down at boot starts all the same
  clients.push(client);
  paths.push(await new ReadPath(client, { prefix, ttlMs: Number(ttl) }).start());
}
const seen = await Promise.all(paths.map((p) => p.mode(entity)));
say({ event: 'ready', modes: seen });

let busy = false;
const poll = setInterval(async () => {
  if (busy) return;
  busy = true;
  try {
    const now = await Promise.all(paths.map((p) => p.mode(entity)));
    now.forEach((mode, i) => {
      if (mode !== seen[i]) {
        say({ event: 'change', client: i, from: seen[i], mode });
        seen[i] = mode;
      }
    });
  } finally {
    busy = false;
  }
}, 10);

async function quit() {
  clearInterval(poll);
  await Promise.all(paths.map((p) => p.close()));
  for (const c of clients) c.destroy(); // Redis may be gone: do not wait on it
  process.exit(0);
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'report') say({ event: 'report', modes: [...seen] });
  else if (cmd === 'quit') quit();
});
lines.on('close', quit);
