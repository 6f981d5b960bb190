// A failed SSH handshake closes its TCP connection (it was left half-open, one per attempt).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseInventory } from '../../src/inventory/load.js';
import { SshTransport } from '../../src/transport/ssh.js';
import { scratchDirs } from '../support/scratch.js';

const scratch = scratchDirs('chops-failed-handshake');

/** A TCP server that counts connections and answers each with a banner, then hangs up. */
async function countingServer(): Promise<{ port: number; accepted: () => number; open: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.end('SSH-2.0-chops-test\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => n,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
    open: () => sockets.size,
  };
}

test('a failed handshake closes its connection', async (t) => {
  const dir = scratch();
  mkdirSync(dir, { recursive: true });
  const srv = await countingServer();
  t.after(() => srv.close());
  writeFileSync(join(dir, 'id'), 'not a key\n');
  writeFileSync(join(dir, 'known_hosts'), '');
  const path = join(dir, 'inventory.yml');
  const text = `version: 1\nstate: {dir: ${dir}/state}\ndefaults:\n  ssh: {user: root, port: ${srv.port}, identity_file: ${dir}/id, known_hosts: ${dir}/known_hosts, connect_timeout: 5s}\nclusters:\n  c1:\n    shards:\n      - replicas: [{host: h1, address: 127.0.0.1}]\n`;
  writeFileSync(path, text);
  const inv = parseInventory(text, path);
  const host = inv.hosts[0];
  const tr = new SshTransport(host);
  // The handshake fails (no real sshd, not a real key); what counts is where it was attempted.
  await assert.rejects(tr.exec('true'));
  await tr.close();
  assert.equal(srv.accepted(), 1, 'one connection for one attempt');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(srv.open(), 0, 'the failed handshake closed its connection');
});
