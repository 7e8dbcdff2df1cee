/**
 * @jest-environment node
 */
// The harness renders each visualisation with the recorded frames in headless Chromium,
// light and dark; this checks every PNG is produced and really shows a chart: many distinct
// colours, a background of the right brightness for its theme. Needs /usr/bin/chromium
// (apt-get install -y chromium; scripts/test installs it) or $CHROMIUM.
import { execFileSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'fs';
import { tmpdir } from 'os';
import { join, resolve } from 'path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PLUGIN = resolve(__dirname, '..', '..');

jest.setTimeout(120_000);

interface Stats {
  width: number;
  height: number;
  colours: number;
  cornerLuma: number;
  nonBackground: number;
}

describe('harness screenshots', () => {
  const out = mkdtempSync(join(tmpdir(), 'growth-shots-'));
  let stats: Record<string, Stats> = {};

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM)`);
    }
    execFileSync('node', [join(PLUGIN, 'harness', 'screenshot.mjs'), out], { cwd: PLUGIN, stdio: 'pipe' });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      for (const vis of ['cohort-heatmap', 'funnel', 'waterfall']) {
        for (const theme of ['light', 'dark']) {
          const png = readFileSync(join(out, `${vis}-${theme}.png`)).toString('base64');
          // decode in the browser: draw the PNG on a canvas and read its pixels back
          stats[`${vis}-${theme}`] = await page.evaluate(async (data) => {
            const img = new Image();
            img.src = `data:image/png;base64,${data}`;
            await img.decode();
            const c = document.createElement('canvas');
            c.width = img.width;
            c.height = img.height;
            const ctx = c.getContext('2d')!;
            ctx.drawImage(img, 0, 0);
            const px = ctx.getImageData(0, 0, c.width, c.height).data;
            const seen = new Set<number>();
            const bg = (px[0] << 16) | (px[1] << 8) | px[2];
            let other = 0;
            for (let i = 0; i < px.length; i += 4) {
              const v = (px[i] << 16) | (px[i + 1] << 8) | px[i + 2];
              seen.add(v);
              if (v !== bg) {
                other++;
              }
            }
            return {
              width: c.width,
              height: c.height,
              colours: seen.size,
              cornerLuma: 0.2126 * px[0] + 0.7152 * px[1] + 0.0722 * px[2],
              nonBackground: other / (px.length / 4),
            };
          }, png);
        }
      }
    } finally {
      await browser.close();
    }
  });

  it.each(['cohort-heatmap', 'funnel', 'waterfall'].flatMap((v) => [`${v}-light`, `${v}-dark`]))(
    '%s.png is a real picture',
    (name) => {
      const file = join(out, `${name}.png`);
      expect(statSync(file).size).toBeGreaterThan(10_000);
      const s = stats[name];
      expect(s.width).toBeGreaterThanOrEqual(960);
      expect(s.height).toBeGreaterThanOrEqual(350);
      expect(s.colours).toBeGreaterThan(200); // a blank or one-colour page has a handful
      expect(s.nonBackground).toBeGreaterThan(0.5); // the panel covers most of the page
      if (name.endsWith('dark')) {
        expect(s.cornerLuma).toBeLessThan(60);
      } else {
        expect(s.cornerLuma).toBeGreaterThan(200);
      }
    }
  );
});
