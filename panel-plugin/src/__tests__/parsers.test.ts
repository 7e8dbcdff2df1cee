import { addMonths, parseCohorts } from '../data/parseCohorts';
import { parseFunnel } from '../data/parseFunnel';
import { parseWaterfall } from '../data/parseWaterfall';
import { toRecords } from '../data/records';
import { influxRows, NOW, recordedFrames, tableFrame } from '../testing/fixtures';
import { CohortModel, FunnelModel, WaterfallModel } from '../types';

/** Models without the link references (which point at different frames per format). */
function plain(model: unknown): unknown {
  return JSON.parse(JSON.stringify(model, (k, v) => (k === 'link' || k === 'links' ? undefined : v)));
}

function ok<M>(r: { ok: true; model: M } | { ok: false; error: string }): M {
  if (!r.ok) {
    throw new Error(`parse failed: ${r.error}`);
  }
  return r.model;
}

describe('records from recorded frames', () => {
  it('merge the time-series frames back into one record per point, like the table frame', () => {
    const table = toRecords(recordedFrames('cohort-heatmap', 'table'));
    const series = toRecords(recordedFrames('cohort-heatmap', 'time_series'));
    expect(table).toHaveLength(influxRows('cohort-heatmap').length);
    expect(series).toHaveLength(table.length);
    const key = (r: { time: number | null; tags: Record<string, string> }) => `${r.time}/${r.tags.age}`;
    const byKey = new Map(series.map((r) => [key(r), r.values]));
    for (const r of table) {
      expect(byKey.get(key(r))).toEqual(r.values);
    }
  });
});

describe('parseCohorts on the recorded cohort_retention query', () => {
  const raw = influxRows('cohort-heatmap');
  const model = ok(parseCohorts(recordedFrames('cohort-heatmap'), 'auto', NOW)) as CohortModel;

  it('has one row per cohort month and one cell per (cohort, age) point', () => {
    const cohorts = new Set(raw.map((r) => r.time));
    expect(model.rows.map((r) => r.cohort)).toEqual([...cohorts].sort((a, b) => a - b));
    expect(model.rows.reduce((n, r) => n + r.cells.length, 0)).toBe(raw.length);
    const maxAge = Math.max(...raw.map((r) => Number(r.age)));
    expect(model.ages).toEqual(Array.from({ length: maxAge + 1 }, (_, i) => i));
  });

  it('reads logo basis (no MRR), sizes and rates as InfluxDB answered them', () => {
    expect(model.basis).toBe('logo');
    for (const r of raw) {
      const row = model.rows.find((x) => x.cohort === r.time)!;
      expect(row.size).toBe(r.cohort_size);
      const cell = row.cells.find((c) => c.age === Number(r.age))!;
      expect(cell.rate).toBeCloseTo(r.rate, 9);
      expect(cell.retained).toBe(r.retained);
    }
  });

  it('marks as maturing exactly the cells of the month that contains "now"', () => {
    const now = new Date(NOW);
    const open = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const expected = raw.filter((r) => {
      const d = new Date(r.time);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + Number(r.age), 1) === open;
    }).length;
    const maturing = model.rows.flatMap((r) => r.cells).filter((c) => c.maturing);
    expect(expected).toBeGreaterThan(0);
    expect(maturing).toHaveLength(expected);
    expect(maturing.every((c) => c.period === open)).toBe(true);
  });

  it('weights the average row by cohort size over mature cells (= total retained / total members)', () => {
    const nowMonth = addMonths(NOW, 0);
    for (const a of model.average) {
      const cells = raw.filter((r) => Number(r.age) === a.age && addMonths(r.time, Number(r.age)) < nowMonth);
      const retained = cells.reduce((s, r) => s + r.retained, 0);
      const members = cells.reduce((s, r) => s + r.cohort_size, 0);
      if (members === 0) {
        expect(a.rate).toBeNull();
      } else {
        expect(a.rate).toBeCloseTo(retained / members, 6);
        expect(a.cohorts).toBe(cells.length);
      }
    }
  });

  it('gives the same model from time-series frames', () => {
    const series = ok(parseCohorts(recordedFrames('cohort-heatmap', 'time_series'), 'auto', NOW));
    expect(plain(series)).toEqual(plain(model));
  });

  it('revenue basis weights by starting MRR and allows retention above 100 %', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const t1 = Date.UTC(2026, 1, 1);
    const frame = tableFrame('cohort_retention', 'A', {
      Time: [t0, t0, t1],
      age: ['0', '1', '0'],
      rate: [1, 1.2, 1],
      cohort_size: [10, 10, 30],
      retained: [10, 9, 30],
      mrr: [1000, 1200, 100],
    });
    const m = ok(parseCohorts([frame], 'auto', Date.UTC(2026, 5, 1)));
    expect(m.basis).toBe('revenue');
    expect(m.rows[0].baseMrr).toBe(1000);
    // age 0: (1*1000 + 1*100) / 1100 = 1; age 1: only the first cohort
    expect(m.average[0].rate).toBeCloseTo(1, 9);
    expect(m.average[1].rate).toBeCloseTo(1.2, 9);
  });
});

describe('parseCohorts on the recorded revenue-retention query', () => {
  const raw = influxRows('cohort-heatmap-revenue');
  const model = ok(parseCohorts(recordedFrames('cohort-heatmap-revenue'), 'auto', NOW)) as CohortModel;

  it("detects the revenue basis from the MRR and keeps each cohort's starting MRR", () => {
    expect(model.basis).toBe('revenue');
    for (const r of raw.filter((x) => x.age === '0')) {
      expect(model.rows.find((row) => row.cohort === r.time)!.baseMrr).toBeCloseTo(r.mrr, 6);
    }
  });

  it('weights the average row by starting MRR (= total MRR at age k / total starting MRR)', () => {
    const nowMonth = addMonths(NOW, 0);
    const base = new Map(raw.filter((r) => r.age === '0').map((r) => [r.time, r.mrr]));
    for (const a of model.average.filter((x) => x.rate !== null)) {
      const cells = raw.filter((r) => Number(r.age) === a.age && addMonths(r.time, Number(r.age)) < nowMonth);
      const mrr = cells.reduce((s, r) => s + r.mrr, 0);
      const start = cells.reduce((s, r) => s + base.get(r.time)!, 0);
      expect(a.rate).toBeCloseTo(mrr / start, 6);
    }
  });

  it('gives the same model from time-series frames', () => {
    expect(plain(ok(parseCohorts(recordedFrames('cohort-heatmap-revenue', 'time_series'), 'auto', NOW)))).toEqual(
      plain(model)
    );
  });
});

describe('parseFunnel on the recorded funnel_steps and funnel_branches queries', () => {
  const steps = influxRows('funnel', 'A');
  const branches = influxRows('funnel', 'B');
  const model = ok(parseFunnel(recordedFrames('funnel'))) as FunnelModel;

  it('orders the steps by their number and keeps their users', () => {
    const expected = [...steps].sort((a, b) => parseInt(a.step, 10) - parseInt(b.step, 10));
    expect(model.steps.map((s) => `${s.index}:${s.name}`)).toEqual(expected.map((s) => s.step));
    expect(model.steps.map((s) => s.users)).toEqual(expected.map((s) => s.users));
  });

  it('computes conversion, step conversion and drop-off from the users', () => {
    const [a, b] = model.steps;
    expect(a.conversion).toBe(1);
    expect(a.stepConversion).toBeNull();
    expect(b.conversion).toBeCloseTo(b.users / a.users, 12);
    expect(b.stepConversion).toBeCloseTo(b.users / a.users, 12);
    expect(a.dropoff).toBe(a.users - b.users);
    expect(b.dropoff).toBe(0);
  });

  it('keeps the non-empty branches of each step, and they add up to its drop-off', () => {
    const nonzero = branches.filter((r) => r.users > 0);
    expect(model.steps[0].branches.map((b) => [b.next, b.users])).toEqual(nonzero.map((r) => [r.next, r.users]));
    expect(model.steps[0].branches.reduce((s, b) => s + b.users, 0)).toBe(model.steps[0].dropoff);
  });

  it('gives the same model from time-series frames', () => {
    expect(plain(ok(parseFunnel(recordedFrames('funnel', 'time_series'))))).toEqual(plain(model));
  });

  it('adds up several entry months of one step (a query without sum())', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const t1 = Date.UTC(2026, 1, 1);
    const frame = tableFrame('funnel_steps', 'A', {
      Time: [t0, t1, t0, t1],
      step: ['1:visit', '1:visit', '2:signup', '2:signup'],
      users: [100, 50, 30, 15],
    });
    const m = ok(parseFunnel([frame]));
    expect(m.steps.map((s) => s.users)).toEqual([150, 45]);
    expect(m.steps[1].stepConversion).toBeCloseTo(0.3, 12);
  });

  it('sorts step 10 after step 9', () => {
    const labels = Array.from({ length: 10 }, (_, i) => `${i + 1}:s${i + 1}`).sort(); // InfluxDB's string order
    const frame = tableFrame('funnel_steps', 'A', {
      Time: labels.map(() => 0),
      step: labels,
      users: labels.map((l) => 100 - parseInt(l, 10)),
    });
    expect(ok(parseFunnel([frame])).steps.map((s) => s.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('parseWaterfall on the recorded churn_monthly query', () => {
  const raw = influxRows('waterfall');
  const model = ok(parseWaterfall(recordedFrames('waterfall'))) as WaterfallModel;

  it('has one period per month with contraction and churn as negative effects', () => {
    expect(model.periods).toHaveLength(raw.length);
    model.periods.forEach((p, i) => {
      expect(p.time).toBe(raw[i].time);
      expect(p.mrrStart).toBeCloseTo(raw[i].mrr_start, 6);
      expect(p.movements.new).toBeCloseTo(raw[i].new, 6);
      expect(p.movements.churn).toBeCloseTo(-raw[i].churn, 6);
      expect(p.movements.contraction).toBeCloseTo(-raw[i].contraction, 6);
    });
  });

  it('satisfies the MRR identity the metrics engine guarantees, month by month', () => {
    for (const p of model.periods) {
      const sum = Object.values(p.movements).reduce((s, v) => s + v, 0);
      expect(p.mrrStart + sum).toBeCloseTo(p.mrrEnd, 4);
    }
  });

  it('gives the same model from time-series frames', () => {
    expect(plain(ok(parseWaterfall(recordedFrames('waterfall', 'time_series'))))).toEqual(plain(model));
  });
});

describe('wrong shape and empty data', () => {
  it('says what the cohort heatmap needs when given other frames', () => {
    const r = parseCohorts(recordedFrames('waterfall'), 'auto', NOW);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.empty).toBe(false);
    expect(!r.ok && r.error).toMatch(/"rate".*"age"/);
    expect(!r.ok && r.error).toContain('churn_monthly(Time, mrr_start');
  });

  it('says what the funnel needs when given other frames', () => {
    const r = parseFunnel(recordedFrames('cohort-heatmap'));
    expect(!r.ok && r.error).toMatch(/"users" per "step"/);
  });

  it('names the missing waterfall fields', () => {
    const r = parseWaterfall(recordedFrames('funnel'));
    expect(!r.ok && r.error).toMatch(/"mrr_start", "mrr_end", "new"/);
  });

  it('refuses several products in one waterfall', () => {
    const cols = {
      mrr_start: [1, 1],
      new: [0, 0],
      expansion: [0, 0],
      reactivation: [0, 0],
      contraction: [0, 0],
      churn: [0, 0],
      mrr_end: [1, 1],
    };
    const r = parseWaterfall([tableFrame('churn_monthly', 'A', { Time: [0, 0], product: ['a', 'b'], ...cols })]);
    expect(!r.ok && r.error).toMatch(/one product at a time/);
  });

  it.each([
    ['no frames', []],
    ['an empty frame', [tableFrame('cohort_retention', 'A', { Time: [], age: [], rate: [] })]],
  ])('reports %s as empty, not as an error', (_, frames) => {
    for (const r of [parseCohorts(frames, 'auto', NOW), parseFunnel(frames), parseWaterfall(frames)]) {
      expect(r.ok).toBe(false);
      expect(!r.ok && r.empty).toBe(true);
    }
  });

  it('rejects a non-numeric age', () => {
    const r = parseCohorts([tableFrame('cohort_retention', 'A', { Time: [0], age: ['x'], rate: [0.5] })], 'auto', NOW);
    expect(!r.ok && r.error).toMatch(/whole number of months, got "x"/);
  });
});
