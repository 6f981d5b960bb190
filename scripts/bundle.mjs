// Bundle the CLI with esbuild into ONE CommonJS file, dist/bundle/chops.cjs, that bin/chops.js
// compiles with a V8 code cache (see there). Measured on the 20-host fan-out (issue 8 #12): ~45
// ESM chunks cost ~40 ms of CPU in Node 20's ESM loader alone (resolve, stat, link per module),
// and parsing/compiling chops' own code another ~60 ms per run; one CommonJS file compiled from
// its code cache pays neither. Node 20 has no built-in compile cache (module.enableCompileCache
// came in 22.1), hence our own.
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** `require('./x.node')` inside a bundled package → `require('<package>/…/x.node')`, resolved at run time. */
const nativeAddonsFromPackage = {
  name: 'native-addons-from-package',
  setup(b) {
    b.onResolve({ filter: /\.node$/ }, (args) => {
      const abs = join(args.resolveDir, args.path);
      const at = abs.lastIndexOf('/node_modules/');
      if (at < 0) throw new Error(`bundle: native addon outside node_modules: ${abs}`);
      return { path: abs.slice(at + '/node_modules/'.length), external: true };
    });
  },
};

// Loaded lazily, on the commands that need them; both ship CommonJS builds with the same exports.
const LAZY = ['zx', 'zx/core', '@clickhouse/client'];

rmSync('dist/bundle', { recursive: true, force: true }); // chunks and caches of an older build
await build({
  entryPoints: ['src/cli.ts'],
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  outfile: 'dist/bundle/chops.cjs',
  // ssh2 is bundled (its ~50 ms of compile per run then comes from the cache too); its native
  // addons stay files of its package, required from node_modules at run time.
  external: ['cpu-features', ...LAZY],
  plugins: [nativeAddonsFromPackage],
  // The sources are ES modules: import.meta.url is the bundle's own URL.
  define: { 'import.meta.url': '__chopsImportMetaUrl' },
  banner: { js: "const __chopsImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  // Whitespace and syntax only: names stay (stack traces still read), and the file V8 reads and
  // decodes at every start is 1.7 MB instead of 2.6 (~9 ms of CPU per run).
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});

// A script compiled with vm.Script cannot import() without --experimental-vm-modules in Node 20:
// the lazily loaded externals are required instead.
const out = 'dist/bundle/chops.cjs';
let code = readFileSync(out, 'utf8');
for (const name of LAZY) code = code.replaceAll(`import(${JSON.stringify(name)})`, `Promise.resolve().then(() => require(${JSON.stringify(name)}))`);
const left = code.match(/\bimport\("[^"]*"\)/g);
if (left) throw new Error(`bundle: dynamic import() left in ${out}: ${left.join(', ')}; add it to LAZY in scripts/bundle.mjs`);
writeFileSync(out, code);
