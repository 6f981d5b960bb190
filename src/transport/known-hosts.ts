// Strict host-key checking against an OpenSSH known_hosts file, the way `ssh` does it:
// plain and hashed (|1|salt|hash) host patterns, `[host]:port` for non-22 ports,
// @revoked markers. An unknown key is refused unless the operator opted into trust on
// first use; a changed key is always refused.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { DESCRIPTOR_HINT, isDescriptorLimit } from './credentials.js';
import { dirname } from 'node:path';

export type HostKeyVerdict = { status: 'match' } | { status: 'unknown' } | { status: 'changed'; knownTypes: string[] } | { status: 'revoked' };

/** The name a known_hosts file uses for host:port. */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** `SHA256:...` fingerprint, as `ssh-keygen -lf` prints it. */
export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** Key type from a raw SSH public key blob (first length-prefixed string). */
export function keyType(keyBlob: Buffer): string {
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

const patternCache = new Map<string, RegExp>();

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return h === hash;
  }
  // OpenSSH wildcards: * and ?; a leading ! negates (handled by caller).
  if (!/[*?]/.test(pattern)) return pattern === name;
  let re = patternCache.get(pattern);
  if (!re) {
    re = new RegExp(
      '^' +
        pattern
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.') +
        '$',
    );
    patternCache.set(pattern, re);
  }
  return re.test(name);
}

export function checkHostKey(knownHostsText: string, name: string, keyBlob: Buffer): HostKeyVerdict {
  const type = keyType(keyBlob);
  const b64 = keyBlob.toString('base64');
  let sawSameType = false;
  const knownTypes: string[] = [];
  for (const rawLine of knownHostsText.split('\n')) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker = '';
    if (fields[0].startsWith('@')) marker = fields.shift()!;
    if (fields.length < 3) continue;
    const [patterns, ktype, kdata] = fields;
    let matched = false;
    for (const p of patterns.split(',')) {
      if (p.startsWith('!')) {
        if (patternMatches(p.slice(1), name)) {
          matched = false;
          break;
        }
      } else if (patternMatches(p, name)) matched = true;
    }
    if (!matched) continue;
    if (marker === '@revoked') {
      if (kdata === b64) return { status: 'revoked' };
      continue;
    }
    if (marker === '@cert-authority') continue;
    knownTypes.push(ktype);
    if (ktype === type) {
      sawSameType = true;
      if (kdata === b64) return { status: 'match' };
    }
  }
  // Like OpenSSH: a known key of the same type that differs is a changed key. A host known only
  // by other key types is also refused as changed, so a downgrade cannot slip through as "unknown".
  if (sawSameType || knownTypes.length > 0) return { status: 'changed', knownTypes };
  return { status: 'unknown' };
}

/** The file's text; read once per run and shared by every connection (cleared when we append). */
const knownHostsCache = new Map<string, Promise<string>>();

export function readKnownHosts(path: string): Promise<string> {
  let p = knownHostsCache.get(path);
  if (!p) {
    p = readFile(path, 'utf8').catch((e: any) => {
      if (e.code === 'ENOENT') return '';
      // Out of descriptors is the process's limit, not a known_hosts problem: say which and the fix.
      if (isDescriptorLimit(e.code)) throw Object.assign(new Error(`cannot open ${path}: ${e.code}; ${DESCRIPTOR_HINT}`), { code: e.code });
      throw e;
    });
    knownHostsCache.set(path, p);
  }
  return p;
}

/** Record a key (trust on first use), hashed like `HashKnownHosts yes`. */
export async function recordHostKey(path: string, name: string, keyBlob: Buffer): Promise<void> {
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(name).digest('base64');
  knownHostsCache.delete(path);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await appendFile(path, `|1|${salt.toString('base64')}|${hash} ${keyType(keyBlob)} ${keyBlob.toString('base64')}\n`, { mode: 0o600 });
}
