import { DataFrame } from '@grafana/data';

import { DOWN_MOVEMENTS, MOVEMENTS, Movement, ParseResult, WaterfallModel, WaterfallPeriod } from '../types';
import { describeFrames, isEmpty, toRecords } from './records';

export const WATERFALL_QUERY_HINT =
  'SELECT "mrr_start", "new", "expansion", "reactivation", "contraction", "churn", "fx_impact", "mrr_end" FROM "churn_monthly" WHERE ...';

const REQUIRED = ['mrr_start', 'mrr_end', 'new', 'expansion', 'reactivation', 'contraction', 'churn'];

/**
 * `churn_monthly` points (one per month: mrr_start, the movements, mrr_end) as waterfall
 * periods. Contraction and churn are stored as positive amounts that lower MRR; they come
 * out negative here so every movement is its signed effect. fx_impact may be absent (0).
 */
export function parseWaterfall(frames: DataFrame[]): ParseResult<WaterfallModel> {
  if (isEmpty(frames)) {
    return { ok: false, empty: true, error: 'No MRR movements in the selected time range' };
  }
  const records = toRecords(frames).filter((r) => REQUIRED.some((c) => c in r.values));
  const missing = REQUIRED.filter((c) => !records.some((r) => c in r.values));
  if (records.length === 0 || missing.length > 0) {
    return {
      ok: false,
      empty: false,
      error:
        `Revenue waterfall needs ${missing.map((m) => `"${m}"`).join(', ')} per month, as ${WATERFALL_QUERY_HINT} gives; ` +
        `got ${describeFrames(frames)}`,
    };
  }
  const products = new Set(records.map((r) => r.tags.product).filter((p) => p !== undefined));
  if (products.size > 1) {
    return {
      ok: false,
      empty: false,
      error: `Revenue waterfall draws one product at a time; got ${[...products].join(', ')} (drop GROUP BY "product")`,
    };
  }
  const periods: WaterfallPeriod[] = [];
  for (const r of [...records].sort((a, b) => (a.time ?? 0) - (b.time ?? 0))) {
    const start = r.values.mrr_start;
    const end = r.values.mrr_end;
    if (start === null || start === undefined || end === null || end === undefined) {
      continue; // a month without MRR (before the product's first customer)
    }
    const movements = {} as Record<Movement, number>;
    for (const m of MOVEMENTS) {
      const v = r.values[m] ?? 0;
      movements[m] = DOWN_MOVEMENTS.has(m) ? -Math.abs(v) : v;
    }
    const links: WaterfallPeriod['links'] = {};
    for (const c of [...MOVEMENTS, 'mrr_start', 'mrr_end'] as const) {
      if (r.links[c]) {
        links[c] = r.links[c];
      }
    }
    periods.push({ time: r.time ?? 0, mrrStart: start, mrrEnd: end, movements, links });
  }
  if (periods.length === 0) {
    return { ok: false, empty: true, error: 'No MRR in the selected time range' };
  }
  return { ok: true, model: { periods } };
}
