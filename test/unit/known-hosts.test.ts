import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { checkHostKey, knownHostsName, recordHostKey, readKnownHosts, fingerprint } from '../../src/transport/known-hosts.js';

function keypair(dir: string, name: string): Buffer {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)]);
  const pub = readFileSync(join(dir, name + '.pub'), 'utf8').split(' ');
  return Buffer.from(pub[1], 'base64');
}

test('known_hosts: match, unknown, changed, port syntax, hashed entries', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'chops-kh-'));
  try {
    const k1 = keypair(dir, 'a');
    const k2 = keypair(dir, 'b');
    const text = `# comment\n10.0.0.1 ssh-ed25519 ${k1.toString('base64')}\n[10.0.0.2]:2222,other ssh-ed25519 ${k1.toString('base64')}\n`;
    assert.equal(checkHostKey(text, '10.0.0.1', k1).status, 'match');
    assert.equal(checkHostKey(text, '10.0.0.1', k2).status, 'changed');
    assert.equal(checkHostKey(text, '10.0.0.3', k1).status, 'unknown');
    assert.equal(checkHostKey(text, knownHostsName('10.0.0.2', 2222), k1).status, 'match');
    assert.equal(checkHostKey(text, knownHostsName('10.0.0.2', 22), k1).status, 'unknown');
    assert.equal(checkHostKey(`@revoked * ssh-ed25519 ${k2.toString('base64')}\n`, 'x', k2).status, 'revoked');
    // trust on first use writes a hashed line that OpenSSH and we both accept
    const kh = join(dir, 'known_hosts');
    await recordHostKey(kh, '[127.0.0.5]:2200', k2);
    const written = await readKnownHosts(kh);
    assert.match(written, /^\|1\|/);
    assert.equal(checkHostKey(written, '[127.0.0.5]:2200', k2).status, 'match');
    const found = execFileSync('ssh-keygen', ['-F', '[127.0.0.5]:2200', '-f', kh], { encoding: 'utf8' });
    assert.match(found, /Host \[127.0.0.5\]:2200 found/);
    assert.match(fingerprint(k1), /^SHA256:[A-Za-z0-9+/]{43}$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
