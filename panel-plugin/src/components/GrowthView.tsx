import { DataFrame, GrafanaTheme2 } from '@grafana/data';
import React, { ReactNode, useMemo } from 'react';

import { parseCohorts } from '../data/parseCohorts';
import { parseFunnel } from '../data/parseFunnel';
import { parseWaterfall } from '../data/parseWaterfall';
import { GrowthOptions, ParseResult } from '../types';
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
export function GrowthView({ frames, options, width, height, theme, now, renderMessage }: GrowthViewProps) {
  const vis = options.visualisation;
  const parsed: ParseResult<unknown> = useMemo(() => {
    switch (vis) {
      case 'funnel':
        return parseFunnel(frames);
      case 'waterfall':
        return parseWaterfall(frames);
      default:
        return parseCohorts(frames, options.basis, now);
    }
  }, [vis, frames, options.basis, now]);
  if (!parsed.ok) {
    return <>{renderMessage(parsed.error, parsed.empty)}</>;
  }
  const common = { options, width, height, theme };
  switch (vis) {
    case 'funnel':
      return <FunnelChart model={parsed.model as never} {...common} />;
    case 'waterfall':
      return <WaterfallChart model={parsed.model as never} {...common} />;
    default:
      return <CohortHeatmap model={parsed.model as never} {...common} />;
  }
}
