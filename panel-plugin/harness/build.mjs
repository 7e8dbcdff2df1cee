// Bundle the harness page (React + @grafana/data + the panel's view) with esbuild.
// Usage: node harness/build.mjs [outdir]   (default harness/dist)
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export async function buildHarness(outdir = join(here, 'dist')) {
  outdir = resolve(outdir);
  mkdirSync(outdir, { recursive: true });
  await build({
    entryPoints: [join(here, 'index.tsx')],
    bundle: true,
    outfile: join(outdir, 'harness.js'),
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
  });
  writeFileSync(
    join(outdir, 'index.html'),
    '<!doctype html><html><head><meta charset="utf-8"><title>growth panel harness</title></head>' +
      '<body><div id="root"></div><script src="harness.js"></script></body></html>\n'
  );
  return outdir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = await buildHarness(process.argv[2]);
  console.log(`harness built in ${out}`);
}
