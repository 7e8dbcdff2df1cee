import { DataFrame } from '@grafana/data';

import { AverageCell, CohortBasis, CohortCell, CohortModel, CohortRow, ParseResult } from '../types';
import { describeFrames, isEmpty, toRecords } from './records';

export const COHORT_QUERY_HINT =
  'SELECT "rate", "cohort_size", "retained", "mrr" FROM "cohort_retention" WHERE ... GROUP BY "age"';

/** The UTC month start `months` after the month of `ms`. */
export function addMonths(ms: number, months: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1);
}

/**
 * `cohort_retention` points (time = cohort month, tag `age`, fields rate, cohort_size,
 * retained, mrr) as the cohort triangle. `now` (the dashboard's time range end) decides
 * which cells are still maturing: those whose calendar month has not ended yet.
 */
export function parseCohorts(frames: DataFrame[], basis: CohortBasis, now: number): ParseResult<CohortModel> {
  if (isEmpty(frames)) {
    return { ok: false, empty: true, error: 'No cohort data in the selected time range' };
  }
  const records = toRecords(frames).filter((r) => 'rate' in r.values);
  if (records.length === 0 || records.some((r) => r.tags.age === undefined || r.time === null)) {
    return {
      ok: false,
      empty: false,
      error:
        `Cohort heatmap needs a "rate" per cohort month (time) and "age" tag, as ${COHORT_QUERY_HINT} gives; ` +
        `got ${describeFrames(frames)}`,
    };
  }
  const badAge = records.find((r) => !/^\d+$/.test(r.tags.age));
  if (badAge) {
    return { ok: false, empty: false, error: `Cohort age must be a whole number of months, got "${badAge.tags.age}"` };
  }
  const resolved: 'logo' | 'revenue' =
    basis === 'auto'
      ? records.some((r) => r.values.mrr !== null && r.values.mrr !== undefined)
        ? 'revenue'
        : 'logo'
      : basis;

  const rows = new Map<number, CohortRow>();
  for (const r of records) {
    const cohort = addMonths(r.time!, 0);
    let row = rows.get(cohort);
    if (!row) {
      row = { cohort, size: 0, baseMrr: null, cells: [] };
      rows.set(cohort, row);
    }
    const age = Number(r.tags.age);
    const period = addMonths(cohort, age);
    const cell: CohortCell = {
      age,
      period,
      rate: r.values.rate ?? null,
      retained: r.values.retained ?? null,
      mrr: r.values.mrr ?? null,
      maturing: addMonths(period, 1) > now,
      link: r.links.rate,
    };
    row.cells.push(cell);
    row.size = Math.max(row.size, r.values.cohort_size ?? 0);
    if (age === 0 && cell.mrr !== null) {
      row.baseMrr = cell.mrr;
    }
  }
  const sorted = [...rows.values()].sort((a, b) => a.cohort - b.cohort);
  let maxAge = 0;
  for (const row of sorted) {
    row.cells.sort((a, b) => a.age - b.age);
    maxAge = Math.max(maxAge, ...row.cells.map((c) => c.age));
  }
  const ages = Array.from({ length: maxAge + 1 }, (_, i) => i);
  return { ok: true, model: { basis: resolved, rows: sorted, ages, average: weightedAverage(sorted, ages, resolved) } };
}

/**
 * The weighted average retention per age over cohorts whose cell is mature: weights are
 * cohort sizes (logo, so it equals total retained / total members) or base MRR (revenue,
 * total MRR at age k / total starting MRR). A mean of rates would let a 20-user cohort
 * count as much as a 4,000-user one.
 */
export function weightedAverage(rows: CohortRow[], ages: number[], basis: 'logo' | 'revenue'): AverageCell[] {
  return ages.map((age) => {
    let num = 0;
    let den = 0;
    let cohorts = 0;
    for (const row of rows) {
      const cell = row.cells.find((c) => c.age === age);
      if (!cell || cell.maturing || cell.rate === null) {
        continue;
      }
      const weight = basis === 'revenue' ? (row.baseMrr ?? 0) : row.size;
      if (weight <= 0) {
        continue;
      }
      num += cell.rate * weight;
      den += weight;
      cohorts += 1;
    }
    return { age, rate: den > 0 ? num / den : null, cohorts };
  });
}
