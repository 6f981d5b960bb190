// Raw ssh2 baselines: one connection per host, TCP_NODELAY from connect(), all hosts in parallel.
//   per-command  one exec channel per command, one after another (what a naive client does)
//   one-channel  ONE exec channel running all the commands (`cmd1\ncmd2…`): the real floor of
//                the workload — no client can do less than one connection and one channel
//   one-shell    ONE `sh` fed the commands one at a time, each waited for (chops' own design:
//                a subshell per command, end tokens on both streams) — what a client that
//                records each command's result before it sends the next can reach
// Usage: node raw-ssh2.js HOSTS_JSON KEY CMDS_JSON [per-command|one-channel]
import { Client } from 'ssh2';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { shq } from '../src/quote.js';

const [hostsFile, keyFile, cmdsJson] = process.argv.slice(2);
const hosts: Array<{ address: string; port: number }> = JSON.parse(readFileSync(hostsFile, 'utf8'));
const cmds: string[] = JSON.parse(cmdsJson);
const key = readFileSync(keyFile, 'utf8');
const mode = process.argv[5] ?? 'per-command';
const oneChannel = mode === 'one-channel';

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

/** The commands through one `sh`, one at a time, as src/transport/shell-session.ts sends them. */
function shell(c: Client, address: string): Promise<void> {
  return new Promise((resolve, reject) =>
    c.exec('sh', (err, ch) => {
      if (err) return reject(err);
      let out = '';
      let errText = '';
      let i = 0;
      const token = (n: number) => `__end_${n}__`;
      const send = () => {
        ch.write(`( eval ${shq(cmds[i])} ) </dev/null\nrc=$?\nprintf '%s\\n' ${token(i)} >&2\nprintf '%s %s\\n' ${token(i)} "$rc"\n`);
      };
      const check = () => {
        const t = token(i);
        const at = out.indexOf(t);
        if (at < 0 || !errText.includes(t) || out.indexOf('\n', at) < 0) return;
        const code = Number(out.slice(at + t.length, out.indexOf('\n', at)).trim());
        if (code !== 0) return reject(new Error(`${address}: ${cmds[i]} exited ${code}`));
        out = '';
        errText = '';
        if (++i === cmds.length) {
          ch.end();
          return resolve();
        }
        send();
      };
      ch.on('data', (d: Buffer) => {
        out += d.toString();
        check();
      });
      ch.stderr.on('data', (d: Buffer) => {
        errText += d.toString();
        check();
      });
      send();
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
  if (mode === 'one-shell') {
    await shell(c, h.address);
    c.end();
    return;
  }
  for (const cmd of oneChannel ? [cmds.join('\n')] : cmds) {
    const code = await run(c, cmd);
    if (code !== 0) throw new Error(`${h.address}: ${cmd} exited ${code}`);
  }
  c.end();
}

await Promise.all(hosts.map(host));
