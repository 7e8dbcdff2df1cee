import { scaleLinear, ScaleLinear } from 'd3';

import { LinkSource, MOVEMENTS, Movement, WaterfallMode, WaterfallModel } from '../types';

export type StepKind = 'start' | 'movement' | 'unreconciled' | 'end';

export interface WaterfallStep {
  key: string;
  kind: StepKind;
  movement?: Movement;
  label: string;
  /** Month the step belongs to (periods mode), epoch ms. */
  period?: number;
  /** MRR before and after the step; totals run from 0. */
  from: number;
  to: number;
  value: number;
  link?: LinkSource;
}

export const MOVEMENT_LABELS: Record<Movement, string> = {
  new: 'New',
  expansion: 'Expansion',
  reactivation: 'Reactivation',
  contraction: 'Contraction',
  churn: 'Churn',
  fx_impact: 'FX impact',
};

/** Differences below this (currency units) are rounding, not a gap in the data. */
export const RECONCILE_TOLERANCE = 0.01;

/**
 * The waterfall's steps: starting MRR, every movement as its signed effect, ending MRR.
 * Each step starts where the previous one ended. In `range` mode the movements of all
 * months are summed into one bridge from the first month's start to the last month's end;
 * in `periods` mode every month gets its own movements and an end-of-month total. If the
 * data do not add up (a month missing in the middle), an explicit "Unreconciled" step
 * closes the gap instead of a bar that silently lies.
 */
export function waterfallSteps(
  model: WaterfallModel,
  mode: WaterfallMode,
  monthLabel: (ms: number) => string
): WaterfallStep[] {
  const periods = model.periods;
  const steps: WaterfallStep[] = [];
  const first = periods[0];
  const last = periods[periods.length - 1];
  steps.push({
    key: 'start',
    kind: 'start',
    label: `Start ${monthLabel(first.time)}`,
    from: 0,
    to: first.mrrStart,
    value: first.mrrStart,
    link: first.links.mrr_start,
    period: first.time,
  });
  let cur = first.mrrStart;
  const close = (target: number, key: string, period?: number) => {
    if (Math.abs(target - cur) > RECONCILE_TOLERANCE) {
      steps.push({
        key,
        kind: 'unreconciled',
        label: 'Unreconciled',
        from: cur,
        to: target,
        value: target - cur,
        period,
      });
      cur = target;
    }
  };
  if (mode === 'range') {
    for (const m of MOVEMENTS) {
      const value = periods.reduce((s, p) => s + p.movements[m], 0);
      steps.push({
        key: m,
        kind: 'movement',
        movement: m,
        label: MOVEMENT_LABELS[m],
        from: cur,
        to: cur + value,
        value,
        link: last.links[m],
      });
      cur += value;
    }
    close(last.mrrEnd, 'unreconciled');
  } else {
    periods.forEach((p, i) => {
      close(p.mrrStart, `gap-${i}`, p.time);
      for (const m of MOVEMENTS) {
        const value = p.movements[m];
        steps.push({
          key: `${i}-${m}`,
          kind: 'movement',
          movement: m,
          label: MOVEMENT_LABELS[m],
          period: p.time,
          from: cur,
          to: cur + value,
          value,
          link: p.links[m],
        });
        cur += value;
      }
      close(p.mrrEnd, `unreconciled-${i}`, p.time);
      if (i < periods.length - 1) {
        steps.push({
          key: `end-${i}`,
          kind: 'end',
          label: monthLabel(p.time),
          period: p.time,
          from: 0,
          to: p.mrrEnd,
          value: p.mrrEnd,
          link: p.links.mrr_end,
        });
      }
    });
  }
  steps.push({
    key: 'end',
    kind: 'end',
    label: `End ${monthLabel(last.time)}`,
    from: 0,
    to: last.mrrEnd,
    value: last.mrrEnd,
    link: last.links.mrr_end,
    period: last.time,
  });
  return steps;
}

export interface WaterfallBar {
  step: WaterfallStep;
  x: number;
  w: number;
  y: number; // top
  h: number;
  /** Totals on a truncated axis are drawn from the axis bottom, marked with a break. */
  broken: boolean;
}

export interface WaterfallLayout {
  bars: WaterfallBar[];
  y: ScaleLinear<number, number>;
  plot: { x: number; y: number; w: number; h: number };
  /** The axis starts above 0 (movements are small next to MRR). */
  truncated: boolean;
}

export const WATERFALL_MARGIN = { top: 26, right: 16, bottom: 54, left: 64 };

/**
 * Bars left to right in equal slots. The y axis covers every running MRR value; when the
 * lowest is far from 0 it starts just below it (else a 2 % movement would be one pixel) and
 * the totals, which run from 0, are drawn broken at the axis bottom.
 */
export function waterfallLayout(
  steps: WaterfallStep[],
  width: number,
  height: number,
  margin = WATERFALL_MARGIN
): WaterfallLayout {
  const plot = {
    x: margin.left,
    y: margin.top,
    w: Math.max(20, width - margin.left - margin.right),
    h: Math.max(20, height - margin.top - margin.bottom),
  };
  const moving = steps.filter((s) => s.kind === 'movement' || s.kind === 'unreconciled');
  const values = steps.flatMap((s) => (s.kind === 'start' || s.kind === 'end' ? [s.to] : [s.from, s.to]));
  const hi = Math.max(0, ...values);
  const lo = Math.min(0, ...values);
  const lowRunning = Math.min(
    ...(moving.length ? moving.flatMap((s) => [s.from, s.to]) : [0]),
    ...steps.map((s) => s.to)
  );
  const spread = hi - lowRunning;
  const truncated = lo >= 0 && spread > 0 && lowRunning - 0.35 * spread > 0.25 * hi;
  const y = scaleLinear()
    .domain([truncated ? lowRunning - 0.35 * spread : lo, hi])
    .range([plot.y + plot.h, plot.y])
    .nice(6);
  const bottom = plot.y + plot.h;
  const slot = plot.w / Math.max(1, steps.length);
  const w = Math.max(2, Math.min(56, slot * 0.68));
  const bars = steps.map((step, i) => {
    const x = plot.x + i * slot + (slot - w) / 2;
    const total = step.kind === 'start' || step.kind === 'end';
    const a = total ? (truncated ? bottom : y(0)) : y(step.from);
    const b = y(step.to);
    return { step, x, w, y: Math.min(a, b), h: Math.max(1, Math.abs(a - b)), broken: total && truncated };
  });
  return { bars, y, plot, truncated };
}
