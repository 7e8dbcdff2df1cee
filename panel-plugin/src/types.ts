import { Field } from '@grafana/data';

/** Which picture the panel draws; chosen by the `visualisation` panel option. */
export type Visualisation = 'cohort-heatmap' | 'funnel' | 'waterfall';

/** Cohort basis: logo (people) or revenue (MRR); `auto` reads it off the data (mrr present). */
export type CohortBasis = 'auto' | 'logo' | 'revenue';

/** Waterfall: one bridge over the whole time range, or one bridge per period, chained. */
export type WaterfallMode = 'range' | 'periods';

export interface GrowthOptions {
  visualisation: Visualisation;
  /** Cohort heatmap */
  basis: CohortBasis;
  /** A Grafana named colour for the high end of the retention scale (theme-aware). */
  heatmapColor: string;
  showCellValues: boolean;
  showAverageRow: boolean;
  /** Funnel */
  showBranches: boolean;
  /** Waterfall */
  waterfallMode: WaterfallMode;
  /** Currency code for MRR amounts (the reporting currency). */
  currency: string;
}

export const DEFAULT_OPTIONS: GrowthOptions = {
  visualisation: 'cohort-heatmap',
  basis: 'auto',
  heatmapColor: 'blue',
  showCellValues: true,
  showAverageRow: true,
  showBranches: true,
  waterfallMode: 'range',
  currency: 'USD',
};

/** Where a drawn value came from, so a click can follow that field's data links. */
export interface LinkSource {
  field: Field;
  rowIndex: number;
}

/** A parser either returns its model or says, in one sentence, what is wrong with the data. */
export type ParseResult<M> = { ok: true; model: M } | { ok: false; empty: boolean; error: string };

// ---- Cohort heatmap ---------------------------------------------------------------------

export interface CohortCell {
  age: number;
  /** Calendar month of the cell (cohort month + age), epoch ms. */
  period: number;
  rate: number | null;
  retained: number | null;
  mrr: number | null;
  /** The cell's calendar month is not over yet at `now`: its value will still change. */
  maturing: boolean;
  link?: LinkSource;
}

export interface CohortRow {
  /** Cohort month, epoch ms (UTC month start). */
  cohort: number;
  size: number;
  /** MRR at the end of the cohort month (revenue basis), else null. */
  baseMrr: number | null;
  cells: CohortCell[]; // sorted by age
}

export interface AverageCell {
  age: number;
  /** Weighted by cohort size (logo) or base MRR (revenue); mature cells only. */
  rate: number | null;
  cohorts: number;
}

export interface CohortModel {
  basis: 'logo' | 'revenue';
  rows: CohortRow[]; // sorted by cohort month
  ages: number[]; // 0..max age present
  average: AverageCell[];
}

// ---- Funnel ----------------------------------------------------------------------------

export interface FunnelBranch {
  /** What the users did instead of the next step (`(none)`: nothing within the window). */
  next: string;
  users: number;
  link?: LinkSource;
}

export interface FunnelStep {
  index: number; // 1-based, from the `step` tag "1:signup"
  name: string; // "signup"
  users: number;
  /** Share of step 1 that reached this step. */
  conversion: number | null;
  /** Share of the previous step that reached this step (null for step 1). */
  stepConversion: number | null;
  /** Users of this step who did not reach the next one (0 for the last step). */
  dropoff: number;
  branches: FunnelBranch[]; // users > 0, most first
  link?: LinkSource;
}

export interface FunnelModel {
  steps: FunnelStep[];
}

// ---- Waterfall -------------------------------------------------------------------------

export type Movement = 'new' | 'expansion' | 'reactivation' | 'contraction' | 'churn' | 'fx_impact';

/** In display order; contraction and churn are stored as positive amounts that lower MRR. */
export const MOVEMENTS: readonly Movement[] = ['new', 'expansion', 'reactivation', 'contraction', 'churn', 'fx_impact'];
export const DOWN_MOVEMENTS: ReadonlySet<Movement> = new Set<Movement>(['contraction', 'churn']);

export interface WaterfallPeriod {
  time: number; // period (month) start, epoch ms
  mrrStart: number;
  mrrEnd: number;
  /** Signed effect on MRR of each movement (contraction and churn negative). */
  movements: Record<Movement, number>;
  links: Partial<Record<Movement | 'mrr_start' | 'mrr_end', LinkSource>>;
}

export interface WaterfallModel {
  periods: WaterfallPeriod[]; // sorted by time
}
