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
    for (const vis of VISUALISATIONS) {
      for (const theme of THEMES) {
        const url = `${pathToFileURL(join(site, 'index.html'))}?vis=${vis}&theme=${theme}`;
        await page.goto(url);
        await page.waitForSelector('#ready', { state: 'attached', timeout: 15000 });
        if ((await page.locator(`[data-testid="${vis}"]`).count()) !== 1) {
          const text = await page.locator('body').innerText();
          throw new Error(`harness drew no ${vis} chart (${theme}): ${text.slice(0, 300)}`);
        }
        if (errors.length) {
          throw new Error(`harness page failed for ${vis}/${theme}: ${errors.join('; ')}`);
        }
        const path = join(outdir, `${vis}-${theme}.png`);
        await page.screenshot({ path, fullPage: true });
        shots.push({ vis, theme, path });
      }
    }
  } finally {
    await browser.close();
  }
  return shots;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const shots = await takeScreenshots(process.argv[2]);
  for (const s of shots) {
    console.log(`${s.vis} ${s.theme}: ${s.path}`);
  }
}
