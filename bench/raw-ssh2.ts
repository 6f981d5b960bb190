// Raw ssh2 baselines: one connection per host, TCP_NODELAY from connect(), all hosts in parallel.
//   per-command  one exec channel per command, one after another (what a naive client does)
//   one-channel  ONE exec channel running all the commands (`cmd1\ncmd2…`): the real floor of
//                the workload — no client can do less than one connection and one channel
// Usage: node raw-ssh2.js HOSTS_JSON KEY CMDS_JSON [per-command|one-channel]
import { Client } from 'ssh2';
import net from 'node:net';
import { readFileSync } from 'node:fs';

const [hostsFile, keyFile, cmdsJson] = process.argv.slice(2);
const hosts: Array<{ address: string; port: number }> = JSON.parse(readFileSync(hostsFile, 'utf8'));
const cmds: string[] = JSON.parse(cmdsJson);
const key = readFileSync(keyFile, 'utf8');
const oneChannel = process.argv[5] === 'one-channel';

function run(c: Client, cmd: string): Promise<number> {
  return new Promise((resolve, reject) =>
    c.exec(cmd, (err, ch) => {
      if (err) return reject(err);
      let code = 255;
      ch.on('data', () => {})
        .on('exit', (x: number) => (code = x))
        .on('close', () => resolve(code));
      ch.stderr.on('data', () => {});
    }),
  );
}

async function host(h: { address: string; port: number }): Promise<void> {
  const sock = net.connect({ host: h.address, port: h.port, noDelay: true });
  await new Promise((r, j) => sock.once('connect', r).once('error', j));
  const c = new Client();
  await new Promise<void>((resolve, reject) =>
    c
      .once('ready', resolve)
      .once('error', reject)
      .connect({ sock, username: 'root', privateKey: key, hostVerifier: () => true }),
  );
  for (const cmd of oneChannel ? [cmds.join('\n')] : cmds) {
    const code = await run(c, cmd);
    if (code !== 0) throw new Error(`${h.address}: ${cmd} exited ${code}`);
  }
  c.end();
}

await Promise.all(hosts.map(host));
