import { DataFrame } from '@grafana/data';

import { FunnelBranch, FunnelModel, FunnelStep, LinkSource, ParseResult } from '../types';
import { describeFrames, isEmpty, toRecords } from './records';

export const FUNNEL_QUERY_HINT =
  'SELECT sum("users") AS "users" FROM "funnel_steps" ... GROUP BY "step" (and funnel_branches ... GROUP BY "step", "next")';

const STEP = /^(\d+):(.*)$/;

/** `1:signup` -> [1, "signup"]; a label without a number keeps its order of arrival. */
function splitStep(label: string, fallback: number): [number, string] {
  const m = STEP.exec(label);
  return m ? [Number(m[1]), m[2]] : [fallback, label];
}

/**
 * `funnel_steps` (tag step, field users) and `funnel_branches` (tags step and next, field
 * users) as a funnel. Several points of one step (several entry months) add up, so a query
 * without sum() still draws the funnel of the whole range.
 */
export function parseFunnel(frames: DataFrame[]): ParseResult<FunnelModel> {
  if (isEmpty(frames)) {
    return { ok: false, empty: true, error: 'No funnel data in the selected time range' };
  }
  const records = toRecords(frames).filter((r) => 'users' in r.values && r.tags.step !== undefined);
  const stepRecords = records.filter((r) => r.tags.next === undefined);
  if (stepRecords.length === 0) {
    return {
      ok: false,
      empty: false,
      error: `Funnel needs "users" per "step" tag, as ${FUNNEL_QUERY_HINT} gives; got ${describeFrames(frames)}`,
    };
  }
  const steps = new Map<string, { index: number; name: string; users: number; link?: LinkSource }>();
  for (const r of stepRecords) {
    const label = r.tags.step;
    let s = steps.get(label);
    if (!s) {
      const [index, name] = splitStep(label, steps.size + 1);
      s = { index, name, users: 0, link: r.links.users };
      steps.set(label, s);
    }
    s.users += r.values.users ?? 0;
  }
  const branches = new Map<string, Map<string, FunnelBranch>>();
  for (const r of records.filter((x) => x.tags.next !== undefined)) {
    const perStep = branches.get(r.tags.step) ?? new Map<string, FunnelBranch>();
    branches.set(r.tags.step, perStep);
    const b = perStep.get(r.tags.next) ?? { next: r.tags.next, users: 0, link: r.links.users };
    b.users += r.values.users ?? 0;
    perStep.set(r.tags.next, b);
  }
  const labels = [...steps.keys()].sort((a, b) => steps.get(a)!.index - steps.get(b)!.index);
  const first = steps.get(labels[0])!.users;
  const out: FunnelStep[] = labels.map((label, i) => {
    const s = steps.get(label)!;
    const prev = i > 0 ? steps.get(labels[i - 1])!.users : null;
    const next = i + 1 < labels.length ? steps.get(labels[i + 1])!.users : null;
    const stepBranches = [...(branches.get(label)?.values() ?? [])]
      .filter((b) => b.users > 0)
      .sort((a, b) => b.users - a.users || a.next.localeCompare(b.next));
    return {
      index: s.index,
      name: s.name,
      users: s.users,
      conversion: first > 0 ? s.users / first : null,
      stepConversion: prev === null ? null : prev > 0 ? s.users / prev : null,
      dropoff: next === null ? 0 : Math.max(0, s.users - next),
      branches: next === null ? [] : stepBranches,
      link: s.link,
    };
  });
  return { ok: true, model: { steps: out } };
}
