// config-push without hosts: the templates, the reload/restart table, section changes, the
// unified diff and its redaction, the on-node validator's verdicts (captured 18.16 output), the
// operator directory's checks, the current-files fact, the inventory's `config:` section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderMacros } from '../../templates/config/macros.js';
import { renderProfiles } from '../../templates/config/profiles.js';
import { renderRemoteServers } from '../../templates/config/remote-servers.js';
import { isChopsOwned, withHeader, xmlText } from '../../templates/config/xml.js';
import { combine, RELOAD_TABLE, sectionEffect } from '../../tasks/config/reload-table.js';
import { changedSections } from '../../tasks/config/sections.js';
import { unifiedDiff } from '../../tasks/config/diff.js';
import { parseVerdict } from '../../tasks/config/validate.js';
import { checkConfigInputs, desiredFiles, readOperatorDir } from '../../tasks/config/files.js';
import { expectedClusters, expectedMacros, expectedProfiles } from '../../tasks/config/verify.js';
import { parseXml } from '../../tasks/config/xml-tree.js';
import { parseCurrentConfig } from '../../facts/config/files.js';
import { parseInventory } from '../../src/inventory/load.js';
import { InventoryError } from '../../src/inventory/problems.js';
import { UsageError } from '../../src/errors.js';
import { redactor } from '../../src/secrets.js';

const INV = `version: 1
defaults:
  ssh: {identity_file: /root/.ssh/id}
clusters:
  lab:
    shards:
      - name: "01"
        replicas: [{host: ch1, address: 10.0.0.1}, {host: ch2, address: 10.0.0.2}]
      - name: "02"
        replicas: [{host: ch3, address: 10.0.0.3}, {host: ch4, address: 10.0.0.4, clickhouse: {tcp_port: 9440}}]
`;

test('templates: macros, remote_servers and profiles from the inventory, with the header and escaping', () => {
  const inv = parseInventory(
    `${INV}config:\n  macros: true\n  remote_servers: true\n  profiles:\n    default: {max_threads: 8, log_queries: true}\n    web: {load_balancing: "in_order"}\n`,
    '/x/inv.yml',
  );
  const files = desiredFiles(inv, inv.hosts[3], []);
  assert.deepEqual(
    files.map((f) => `${f.dir}/${f.name}`),
    ['config.d/chops-macros.xml', 'config.d/chops-remote-servers.xml', 'users.d/chops-profiles.xml'],
  );
  for (const f of files) {
    assert.ok(isChopsOwned(f.content), `${f.name} carries the header`);
    parseXml(f.content); // well-formed
  }
  assert.deepEqual(expectedMacros(parseXml(files[0].content)), { cluster: 'lab', shard: '02', replica: 'ch4' });
  assert.deepEqual(expectedClusters(parseXml(files[1].content)), {
    clusters: ['lab'],
    rows: ['lab 1 1 10.0.0.1:9000', 'lab 1 2 10.0.0.2:9000', 'lab 2 1 10.0.0.3:9000', 'lab 2 2 10.0.0.4:9440'],
  });
  assert.deepEqual(expectedProfiles(parseXml(files[2].content)), [
    { profile: 'default', settings: { max_threads: '8', log_queries: '1' } },
    { profile: 'web', settings: { load_balancing: 'in_order' } },
  ]);
  assert.equal(xmlText(`a<b>&"'`), 'a&lt;b&gt;&amp;&quot;&apos;');
  const m = renderMacros({ cluster: 'c', shard: '</shard><x>', replica: 'r' });
  assert.match(m.content, /<shard>&lt;\/shard&gt;&lt;x&gt;<\/shard>/);
  assert.equal(expectedMacros(parseXml(m.content)).shard, '</shard><x>');
  assert.equal(renderProfiles({ profiles: [] }).dir, 'users.d');
  assert.match(renderRemoteServers([]).content, /<remote_servers>\s*<\/remote_servers>/);
});

test('the operator file gets the header after its XML declaration (nothing may precede it), YAML a comment line', () => {
  const x = withHeader('a.xml', '<?xml version="1.0"?>\n<yandex/>\n', 'operator file /d/config.d/a.xml');
  assert.match(x, /^<\?xml version="1.0"\?>\n<!-- Managed by chops/);
  assert.ok(isChopsOwned(x));
  assert.match(withHeader('a.xml', '<yandex/>', 's'), /^<!-- Managed by chops[^\n]*-->\n<yandex\/>$/);
  assert.match(withHeader('a.yaml', 'macros: {a: 1}\n', 's'), /^# Managed by chops[^\n]*\nmacros/);
  assert.ok(!isChopsOwned('<yandex><!-- mine --></yandex>'));
  // "--" cannot end up inside the header comment
  assert.doesNotMatch(withHeader('a.xml', '<y/>', 'operator file /d--x/a.xml').split('\n')[0].slice(4, -3), /--/);
});

test('reload table: declared sections reload, everything else restarts', () => {
  assert.equal(sectionEffect('config', 'remote_servers').effect, 'reload');
  assert.equal(sectionEffect('config', 'macros').effect, 'reload');
  assert.equal(sectionEffect('users', 'profiles').verify, 'profiles');
  for (const s of ['listen_host', 'tcp_port', 'path', 'zookeeper', 'logger', 'storage_configuration', 'no_such_section'])
    assert.equal(sectionEffect('config', s).effect, 'restart', s);
  assert.equal(sectionEffect('users', 'remote_servers').effect, 'restart', 'a section in the wrong tree is unknown there');
  assert.equal(combine([{ effect: 'reload' }, { effect: 'restart' }]), 'restart');
  assert.equal(combine([]), 'reload');
  assert.ok(
    RELOAD_TABLE.every((r) => r.why.length > 10),
    'every row says why',
  );
});

test('changed sections: only what differs decides; an unreadable file means restart', () => {
  const a = '<yandex><remote_servers><c><shard/></c></remote_servers><listen_host>0.0.0.0</listen_host></yandex>';
  const b = '<yandex><remote_servers><c><shard/><shard/></c></remote_servers><listen_host>0.0.0.0</listen_host></yandex>';
  assert.deepEqual(
    changedSections('config', 'x.xml', a, b).map((s) => [s.section, s.effect]),
    [['remote_servers', 'reload']],
  );
  const c = b.replace('0.0.0.0', '::');
  assert.deepEqual(
    changedSections('config', 'x.xml', b, c).map((s) => [s.section, s.effect]),
    [['listen_host', 'restart']],
  );
  assert.deepEqual(
    changedSections('config', 'x.xml', undefined, a)
      .map((s) => s.section)
      .sort(),
    ['listen_host', 'remote_servers'],
  );
  assert.deepEqual(changedSections('config', 'x.xml', a, a.replace('<yandex>', '<yandex><!-- note -->')), [], 'a comment changes no section');
  assert.deepEqual(changedSections('config', 'x.xml', a, '<yandex><broken'), [
    {
      section: '(unreadable)',
      effect: 'restart',
      verify: 'loaded',
      why: "chops cannot read the file's sections (bad attribute in <broken> at line 1): restart",
    },
  ]);
  assert.deepEqual(
    changedSections('users', 'p.yaml', 'profiles: {default: {max_threads: 2}}\n', 'profiles: {default: {max_threads: 3}}\n').map((s) => s.effect),
    ['reload'],
  );
});

test('unified diff: hunks with context, removals before additions, new files, secrets redacted', () => {
  const old = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].join('\n') + '\n';
  const neu = old.replace('e\n', 'E\n');
  assert.equal(unifiedDiff('/f', old, neu), ['--- a/f', '+++ b/f', '@@ -2,7 +2,7 @@', ' b', ' c', ' d', '-e', '+E', ' f', ' g', ' h'].join('\n'));
  assert.equal(unifiedDiff('/f', old, old), '');
  assert.equal(unifiedDiff('/f', undefined, 'x\ny\n'), ['--- /dev/null', '+++ b/f', '@@ -0,0 +1,2 @@', '+x', '+y'].join('\n'));
  const users = (pw: string) => `<yandex><users><u>\n<password>${pw}</password>\n</u></users></yandex>\n`;
  const d = unifiedDiff('/u.xml', users('old-secret-1'), users('new-secret-2'));
  assert.match(d, /^-<password>\*\*\*<\/password>$/m);
  assert.match(d, /^\+<password>\*\*\*<\/password>$/m);
  assert.doesNotMatch(d, /secret-/);
  redactor.add('registered-secret-xyz');
  assert.doesNotMatch(unifiedDiff('/v', undefined, 'key registered-secret-xyz\n'), /registered-secret-xyz/);
});

test('validator verdicts from captured 18.16 clickhouse-client output', () => {
  const accepted = [
    'stage /tmp/chops-config-check.Ab12',
    'validator clickhouse-client',
    'result config.xml 210',
    '| Code: 210. DB::NetException: Connection refused (127.0.0.1:1, 127.0.0.1)',
    'result users.xml 210',
    '| Code: 210. DB::NetException: Connection refused (127.0.0.1:1, 127.0.0.1)',
  ].join('\n');
  assert.equal(parseVerdict(accepted).ok, true);
  const broken = accepted
    .replace(
      '| Code: 210. DB::NetException: Connection refused (127.0.0.1:1, 127.0.0.1)',
      "| Exception: Failed to merge config with '/tmp/chops-config-check.Ab12/config.d/zz.xml': SAXParseException: Unclosed token in '/tmp/chops-config-check.Ab12/config.d/zz.xml', line 1 column 8",
    )
    .replace('result config.xml 210', 'result config.xml 78');
  const v = parseVerdict(broken);
  assert.equal(v.ok, false);
  assert.equal(
    v.roots[0].message,
    "Exception: Failed to merge config with '/etc/clickhouse-server/config.d/zz.xml': SAXParseException: Unclosed token in '/etc/clickhouse-server/config.d/zz.xml', line 1 column 8",
  );
  // an outcome chops cannot tell never passes
  const odd = accepted.replace('result users.xml 210\n| Code: 210. DB::NetException: Connection refused (127.0.0.1:1, 127.0.0.1)', 'result users.xml 0');
  assert.equal(parseVerdict(odd).ok, false);
  assert.match(parseVerdict(odd).roots[1].message, /could not tell/);
  assert.equal(parseVerdict('stage /tmp/x\nvalidator none\n').ok, false);
  assert.equal(parseVerdict('stage /tmp/x\nvalidator clickhouse-client\nresult config.xml 210\n| Connection refused\n').ok, false, 'both roots must be read');
  const modern = 'stage /tmp/x\nvalidator clickhouse extract-from-config\nresult config.xml 0\n| /var/lib/clickhouse/\nresult users.xml 0\n';
  assert.equal(parseVerdict(modern).ok, true);
  assert.equal(parseVerdict(modern.replace('result users.xml 0', 'result users.xml 1\n| Code: 36. DB::Exception: bad')).ok, false);
});

test('operator directory: only config.d/ and users.d/ files with safe names; anything else exits 2', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'chops-cfg-'));
  try {
    const dir = (name: string, files: Record<string, string>) => {
      const d = path.join(root, name);
      mkdirSync(d, { recursive: true });
      for (const [rel, text] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(d, rel)), { recursive: true });
        writeFileSync(path.join(d, rel), text);
      }
      return d;
    };
    const good = readOperatorDir(dir('good', { 'config.d/50-limits.xml': '<yandex/>', 'users.d/10-p.yaml': 'profiles: {}\n' }));
    assert.deepEqual(
      good.map((f) => `${f.dir}/${f.name}`),
      ['config.d/50-limits.xml', 'users.d/10-p.yaml'],
    );
    assert.ok(good.every((f) => isChopsOwned(f.content)));
    const refused = (d: string, re: RegExp) =>
      assert.throws(
        () => readOperatorDir(d),
        (e: unknown) => e instanceof UsageError && re.test(e.message),
      );
    refused(dir('other', { 'conf.d/a.xml': '<y/>' }), /neither config.d nor users.d/);
    refused(dir('ext', { 'config.d/a.txt': 'x' }), /not a safe config file name/);
    refused(dir('dot', { 'config.d/.hidden.xml': '<y/>' }), /not a safe config file name/);
    refused(dir('space', { 'config.d/a b.xml': '<y/>' }), /not a safe config file name/);
    refused(dir('nested', { 'config.d/sub/a.xml': '<y/>' }), /not a safe config file name/);
    refused(dir('clash', { 'config.d/chops-macros.xml': '<y/>' }), /chops renders/);
    const bin = dir('binary', {});
    mkdirSync(path.join(bin, 'config.d'), { recursive: true });
    writeFileSync(path.join(bin, 'config.d', 'a.xml'), Buffer.from([0x3c, 0xff, 0x3e]));
    refused(bin, /not UTF-8/);
    const link = dir('link', { 'config.d/real.xml': '<y/>' });
    symlinkSync('/etc/passwd', path.join(link, 'config.d', 'escape.xml'));
    refused(link, /not a regular file/);
    const linkedDir = dir('linkeddir', {});
    symlinkSync('/etc', path.join(linkedDir, 'config.d'));
    refused(linkedDir, /not a directory/);
    refused(path.join(root, 'missing'), /cannot be read/);
    refused(dir('empty', {}), /holds no/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('inventory config: section: checked with positions (exit 2), nothing to push is refused', () => {
  const bad = `${INV}config:\n  macros: yes\n  profiles:\n    default: {max_threads: {a: 1}, "bad name": 1}\n  colour: blue\n`;
  assert.throws(
    () => parseInventory(bad, '/x/inv.yml'),
    (e: unknown) => {
      assert.ok(e instanceof InventoryError);
      const m = (e as Error).message;
      assert.match(m, /\/x\/inv\.yml:12:\d+: key 'config\.macros'/);
      assert.match(m, /key 'config\.profiles\.default\.max_threads': expected a setting value/);
      assert.match(m, /"bad name"/);
      assert.match(m, /key 'config\.colour'/);
      return true;
    },
  );
  const inv = parseInventory(INV, '/x/inv.yml');
  assert.throws(
    () => checkConfigInputs(inv, []),
    (e: unknown) => e instanceof UsageError && /nothing to push/.test((e as Error).message),
  );
  const numeric = parseInventory(INV.replace('  lab:', '  "7lab":') + 'config: {remote_servers: true}\n', '/x/inv.yml');
  assert.throws(() => checkConfigInputs(numeric, []), /cannot be an element of remote_servers/);
});

test('current-files fact: content rebuilt from the prefixed text, checked by sha256; order is checked', async () => {
  const { createHash } = await import('node:crypto');
  const { execa } = await import('execa');
  const { currentConfigCommand } = await import('../../facts/config/files.js');
  const root = mkdtempSync(path.join(tmpdir(), 'chops-cur-'));
  try {
    // the real command through sh on real files: a trailing newline, none, an empty file, a missing one
    const a = path.join(root, 'a.xml');
    const b = path.join(root, 'b.xml');
    const c = path.join(root, 'c.xml');
    const d = path.join(root, 'd.xml');
    writeFileSync(a, '<yandex>\n  <a>é</a>\n>x\nend\n</yandex>\n');
    writeFileSync(b, '<yandex/>');
    writeFileSync(c, '');
    const out = (await execa('sh', ['-c', currentConfigCommand({ paths: [a, b, c, d], dataDir: root })])).stdout;
    const cur = parseCurrentConfig(out, [a, b, c, d]);
    for (const [i, f] of [a, b, c].entries()) {
      const want = readFileSync(f, 'utf8');
      assert.equal(cur.files[i].content, want, f);
      assert.equal(cur.files[i].sha, createHash('sha256').update(want).digest('hex'));
    }
    assert.equal(cur.files[3].exists, false);
    assert.match(cur.files[0].stat ?? '', /^\d+ \S+ \S+$/);
    assert.ok(cur.serverGroup.length > 0);
    assert.throws(() => parseCurrentConfig(out, [b]), /could not read/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
