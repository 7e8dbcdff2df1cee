// Render every visualisation of the harness in headless Chromium, light and dark, and save
// PNG screenshots. Usage: node harness/screenshot.mjs [outdir]   (default ../docs/panel)
// Chromium: /usr/bin/chromium (apt-get install -y chromium), or $CHROMIUM.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { buildHarness } from './build.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const VISUALISATIONS = ['cohort-heatmap', 'funnel', 'waterfall'];
export const THEMES = ['light', 'dark'];
// extra pictures for the README: other options, and a longer (made-up) funnel
export const EXTRAS = [
  { name: 'waterfall-periods-light', vis: 'waterfall', query: 'theme=light&mode=periods' },
  { name: 'cohort-heatmap-revenue-dark', vis: 'cohort-heatmap', query: 'theme=dark&data=revenue' },
  { name: 'funnel-example-light', vis: 'funnel', query: 'theme=light&data=example' },
  { name: 'funnel-example-dark', vis: 'funnel', query: 'theme=dark&data=example' },
];
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Screenshots of every (visualisation, theme); returns [{vis, theme, path}]. */
export async function takeScreenshots(outdir = join(here, '..', '..', 'docs', 'panel')) {
  outdir = resolve(outdir);
  mkdirSync(outdir, { recursive: true });
  const site = await buildHarness(mkdtempSync(join(tmpdir(), 'growth-harness-')));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const shots = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1010, height: 540 }, deviceScaleFactor: 1 });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const runs = [
      ...VISUALISATIONS.flatMap((vis) =>
        THEMES.map((theme) => ({ name: `${vis}-${theme}`, vis, theme, query: `theme=${theme}` }))
      ),
      ...EXTRAS,
    ];
    for (const { name, vis, theme, query } of runs) {
      const url = `${pathToFileURL(join(site, 'index.html'))}?vis=${vis}&${query}`;
      await page.goto(url);
      await page.waitForSelector('#ready', { state: 'attached', timeout: 15000 });
      if ((await page.locator(`[data-testid="${vis}"]`).count()) !== 1) {
        const text = await page.locator('body').innerText();
        throw new Error(`harness drew no ${vis} chart (${name}): ${text.slice(0, 300)}`);
      }
      if (errors.length) {
        throw new Error(`harness page failed for ${name}: ${errors.join('; ')}`);
      }
      const path = join(outdir, `${name}.png`);
      await page.locator('#page').screenshot({ path });
      shots.push({ name, vis, theme, path });
    }
  } finally {
    await browser.close();
  }
  return shots;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const shots = await takeScreenshots(process.argv[2]);
  for (const s of shots) {
    console.log(`${s.name}: ${s.path}`);
  }
}
