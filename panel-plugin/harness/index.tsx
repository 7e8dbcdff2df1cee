/**
 * The harness page: renders one visualisation with the recorded fixture frames (real
 * InfluxDB responses to the dashboards' queries, as Grafana converts them) inside a
 * Grafana-like panel, in the light or dark theme. `?vis=funnel&theme=dark&width=960`.
 * Built by harness/build.mjs; screenshots by harness/screenshot.mjs.
 */
import { createTheme, dataFrameFromJSON, DataFrameJSON } from '@grafana/data';
import React from 'react';
import { createRoot } from 'react-dom/client';

import revenue from '../src/__fixtures__/cohort-heatmap-revenue.table.json';
import cohorts from '../src/__fixtures__/cohort-heatmap.table.json';
import funnel from '../src/__fixtures__/funnel.table.json';
import meta from '../src/__fixtures__/meta.json';
import waterfall from '../src/__fixtures__/waterfall.table.json';
import { GrowthView } from '../src/components/GrowthView';
import { DEFAULT_OPTIONS, GrowthOptions, Visualisation } from '../src/types';
import { exampleFunnel } from './exampleFunnel';

const FIXTURES: Record<Visualisation, { frames: unknown[]; title: string; height: number }> = {
  'cohort-heatmap': { frames: cohorts, title: 'Logo retention by signup month', height: 420 },
  funnel: { frames: funnel, title: 'Funnel: signup → activation, and where users went instead', height: 340 },
  waterfall: { frames: waterfall, title: 'MRR bridge: Jan – Jun 2026', height: 420 },
};

const params = new URLSearchParams(window.location.search);
const vis = (params.get('vis') ?? 'cohort-heatmap') as Visualisation;
const mode = params.get('theme') === 'dark' ? 'dark' : 'light';
const width = Number(params.get('width') ?? 960);
const theme = createTheme({ colors: { mode } });
const data = params.get('data');
const example = data === 'example' && vis === 'funnel';
const fixture = example
  ? { frames: exampleFunnel, title: 'Example: a four-step funnel (made-up numbers)', height: 420 }
  : data === 'revenue' && vis === 'cohort-heatmap'
    ? { frames: revenue, title: 'Revenue retention by first-payment month', height: 420 }
    : FIXTURES[vis];
const height = Number(params.get('height') ?? fixture.height);
const frames = (fixture.frames as DataFrameJSON[]).map((f) => dataFrameFromJSON(f));
const options: GrowthOptions = {
  ...DEFAULT_OPTIONS,
  visualisation: vis,
  waterfallMode: (params.get('mode') as GrowthOptions['waterfallMode']) ?? 'range',
};

document.body.style.margin = '0';
document.body.style.background = theme.colors.background.canvas;
document.body.style.fontFamily = theme.typography.fontFamily;

function Page() {
  return (
    <div id="page" style={{ padding: 16, width: width + 18, display: 'inline-block' }}>
      <div
        style={{
          background: theme.colors.background.primary,
          border: `1px solid ${theme.colors.border.weak}`,
          borderRadius: theme.shape.radius.default,
          width: width + 16,
        }}
      >
        <div
          style={{
            padding: '8px 8px 0 12px',
            height: 32,
            boxSizing: 'border-box',
            color: theme.colors.text.primary,
            fontSize: 14,
            fontWeight: 500,
          }}
        >
          {fixture.title}
          {!example && (
            <span style={{ color: theme.colors.text.secondary, fontWeight: 400, fontSize: 12 }}>
              {' '}
              · product: {meta.variables.product}
            </span>
          )}
        </div>
        <div style={{ padding: 8 }}>
          <GrowthView
            frames={frames}
            options={options}
            width={width}
            height={height}
            theme={theme}
            now={Date.parse(meta.to)}
            renderMessage={(m) => <div style={{ color: theme.colors.text.secondary }}>{m}</div>}
          />
        </div>
      </div>
      <div id="ready" />
    </div>
  );
}

createRoot(document.getElementById('root')!).render(<Page />);
