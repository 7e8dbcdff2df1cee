import { DataFrame, GrafanaTheme2 } from '@grafana/data';
import React, { ReactNode, useMemo } from 'react';

import { parseCohorts } from '../data/parseCohorts';
import { parseFunnel } from '../data/parseFunnel';
import { parseWaterfall } from '../data/parseWaterfall';
import { CohortBasis, CohortModel, FunnelModel, GrowthOptions, Visualisation, WaterfallModel } from '../types';
import { FunnelChart } from './funnel/FunnelChart';
import { CohortHeatmap } from './heatmap/CohortHeatmap';
import { WaterfallChart } from './waterfall/WaterfallChart';

export interface GrowthViewProps {
  frames: DataFrame[];
  options: GrowthOptions;
  width: number;
  height: number;
  theme: GrafanaTheme2;
  /** End of the dashboard time range (epoch ms): decides which cohort cells still mature. */
  now: number;
  /** How to show a parse error or empty data (Grafana's PanelDataErrorView in the panel). */
  renderMessage: (message: string, empty: boolean) => ReactNode;
}

/**
 * The panel without Grafana's runtime: parse the frames for the chosen visualisation and
 * draw it, or hand the parser's message to `renderMessage`. The harness renders this.
 */
type Parsed =
  | { ok: false; empty: boolean; error: string }
  | { ok: true; vis: 'cohort-heatmap'; model: CohortModel }
  | { ok: true; vis: 'funnel'; model: FunnelModel }
  | { ok: true; vis: 'waterfall'; model: WaterfallModel };

function parse(vis: Visualisation, frames: DataFrame[], basis: CohortBasis, now: number): Parsed {
  switch (vis) {
    case 'funnel': {
      const r = parseFunnel(frames);
      return r.ok ? { ok: true, vis, model: r.model } : r;
    }
    case 'waterfall': {
      const r = parseWaterfall(frames);
      return r.ok ? { ok: true, vis, model: r.model } : r;
    }
    default: {
      const r = parseCohorts(frames, basis, now);
      return r.ok ? { ok: true, vis: 'cohort-heatmap', model: r.model } : r;
    }
  }
}

export function GrowthView({ frames, options, width, height, theme, now, renderMessage }: GrowthViewProps) {
  const parsed = useMemo(
    () => parse(options.visualisation, frames, options.basis, now),
    [options.visualisation, frames, options.basis, now]
  );
  if (!parsed.ok) {
    return <>{renderMessage(parsed.error, parsed.empty)}</>;
  }
  const common = { options, width, height, theme };
  switch (parsed.vis) {
    case 'funnel':
      return <FunnelChart model={parsed.model} {...common} />;
    case 'waterfall':
      return <WaterfallChart model={parsed.model} {...common} />;
    default:
      return <CohortHeatmap model={parsed.model} {...common} />;
  }
}
