/** Test helpers: the recorded fixtures as Grafana data frames, and small synthetic frames. */
import { createTheme, DataFrame, dataFrameFromJSON, DataFrameJSON, FieldType } from '@grafana/data';

import revenueInflux from '../__fixtures__/cohort-heatmap-revenue.influx.json';
import revenueTable from '../__fixtures__/cohort-heatmap-revenue.table.json';
import revenueSeries from '../__fixtures__/cohort-heatmap-revenue.time_series.json';
import cohortInflux from '../__fixtures__/cohort-heatmap.influx.json';
import cohortTable from '../__fixtures__/cohort-heatmap.table.json';
import cohortSeries from '../__fixtures__/cohort-heatmap.time_series.json';
import funnelInflux from '../__fixtures__/funnel.influx.json';
import funnelTable from '../__fixtures__/funnel.table.json';
import funnelSeries from '../__fixtures__/funnel.time_series.json';
import meta from '../__fixtures__/meta.json';
import waterfallInflux from '../__fixtures__/waterfall.influx.json';
import waterfallTable from '../__fixtures__/waterfall.table.json';
import waterfallSeries from '../__fixtures__/waterfall.time_series.json';

export type Format = 'table' | 'time_series';
export type Recorded = 'cohort-heatmap' | 'cohort-heatmap-revenue' | 'funnel' | 'waterfall';

const FRAMES = {
  'cohort-heatmap': { table: cohortTable, time_series: cohortSeries },
  'cohort-heatmap-revenue': { table: revenueTable, time_series: revenueSeries },
  funnel: { table: funnelTable, time_series: funnelSeries },
  waterfall: { table: waterfallTable, time_series: waterfallSeries },
};

/** The frames Grafana hands the panel for a visualisation's recorded query. */
export function recordedFrames(vis: keyof typeof FRAMES, format: Format = 'table'): DataFrame[] {
  return (FRAMES[vis][format] as unknown as DataFrameJSON[]).map((f) => dataFrameFromJSON(f));
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** The raw InfluxDB answer (for expected values computed independently of the parsers). */
export function influxSeries(vis: Recorded, refId = 'A'): InfluxSeries[] {
  const raw = {
    'cohort-heatmap': cohortInflux,
    'cohort-heatmap-revenue': revenueInflux,
    funnel: funnelInflux,
    waterfall: waterfallInflux,
  }[vis] as Record<string, { results: Array<{ series?: InfluxSeries[] }> }>;
  return raw[refId].results[0].series ?? [];
}

/** Rows of raw series as objects: {time, ...tags, ...columns}. */
export function influxRows(vis: Recorded, refId = 'A'): Array<Record<string, any>> {
  return influxSeries(vis, refId).flatMap((s) =>
    s.values.map((v) => ({ ...(s.tags ?? {}), ...Object.fromEntries(s.columns.map((c, i) => [c, v[i]])) }))
  );
}

export const NOW = Date.parse(meta.to);
export const META = meta;

export const lightTheme = createTheme({ colors: { mode: 'light' } });
export const darkTheme = createTheme({ colors: { mode: 'dark' } });

/** A table-format frame (as Grafana's InfluxQL parser makes it) from columns of values. */
export function tableFrame(
  name: string,
  refId: string,
  columns: Record<string, Array<string | number | null>>
): DataFrame {
  const fields = Object.entries(columns).map(([fname, values]) => ({
    name: fname,
    type:
      fname === 'Time'
        ? FieldType.time
        : typeof values.find((v) => v !== null) === 'string'
          ? FieldType.string
          : FieldType.number,
    config: {},
    values,
  }));
  const length = fields[0]?.values.length ?? 0;
  return { name, refId, fields, length };
}
