import { FunnelModel } from '../types';

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface BranchBox extends Box {
  step: number; // index into model.steps of the step users stalled at
  branch: number; // index into that step's branches
  /** The slice of the stalled step's drop-off segment the flow leaves from. */
  source: { x0: number; x1: number; y: number };
}

export interface FunnelLayout {
  bars: Box[];
  /** Users who went on from step i to step i+1, as a band between the two bars. */
  continuations: Box[];
  /** The part of bar i whose users did not reach step i+1. */
  dropoffs: Box[];
  branches: BranchBox[];
  labelW: number;
  /** Height of the space between two bars (labels of narrow branches go there). */
  gap: number;
  /** Pixels per user: every bar, band and branch uses this one scale. */
  scale: number;
}

export const FUNNEL_MARGIN = { top: 12, right: 16, bottom: 12, label: 168, gapX: 18, pad: 6 };

/**
 * Bars top to bottom, widths proportional to users (one scale for bars, flows and
 * branches, so a branch is exactly as wide as the users it carries). The users who stalled
 * at step i flow down into branch boxes placed on the next step's row, right of its bar.
 */
export function funnelLayout(model: FunnelModel, width: number, height: number, showBranches: boolean): FunnelLayout {
  const m = FUNNEL_MARGIN;
  const steps = model.steps;
  const n = steps.length;
  const x0 = m.label;
  const plotW = Math.max(20, width - x0 - m.right);
  const first = Math.max(1, ...steps.map((s) => s.users));
  const maxBranches = showBranches ? Math.max(0, ...steps.map((s) => s.branches.length)) : 0;
  const reserve = maxBranches > 0 ? m.gapX + m.pad * (maxBranches - 1) : 0;
  const scale = Math.max(0, plotW - reserve) / first;
  // branch labels that do not fit their box hang below the last row too
  const avail = Math.max(20, height - m.top - m.bottom - (maxBranches > 0 ? 46 : 0));
  // gap rows hold the conversion and drop-off labels, and the branch labels
  const barH = Math.max(14, Math.min(64, avail / (n + (n - 1) * 0.9)));
  const gap = n > 1 ? Math.max(48, Math.min(88, (avail - n * barH) / (n - 1))) : 0;
  const used = n * barH + (n - 1) * gap;
  const top = m.top + Math.max(0, (avail - used) / 2);
  const bars = steps.map((s, i) => ({ x: x0, y: top + i * (barH + gap), w: s.users * scale, h: barH }));
  const continuations: Box[] = [];
  const dropoffs: Box[] = [];
  const branches: BranchBox[] = [];
  for (let i = 0; i + 1 < n; i++) {
    const a = bars[i];
    const b = bars[i + 1];
    continuations.push({ x: x0, y: a.y + a.h, w: b.w, h: b.y - (a.y + a.h) });
    dropoffs.push({ x: x0 + b.w, y: a.y, w: Math.max(0, a.w - b.w), h: a.h });
    if (!showBranches) {
      continue;
    }
    let sx = x0 + b.w; // slices and boxes both go left to right, so no two flows cross
    let tx = x0 + b.w + m.gapX;
    steps[i].branches.forEach((br, j) => {
      const w = br.users * scale;
      branches.push({
        step: i,
        branch: j,
        x: tx,
        y: b.y,
        w,
        h: b.h,
        source: { x0: sx, x1: sx + w, y: a.y + a.h },
      });
      sx += w;
      tx += w + m.pad;
    });
  }
  return { bars, continuations, dropoffs, branches, labelW: m.label, gap, scale };
}

/** The band of a branch flow: from its slice of the drop-off edge down to its box top. */
export function branchPath(b: BranchBox): string {
  const { x0, x1, y } = b.source;
  const ty = b.y;
  const my = (y + ty) / 2;
  // both edges are smooth vertical S-curves, so the band keeps its width all the way
  return [
    `M${x0},${y}`,
    `C${x0},${my} ${b.x},${my} ${b.x},${ty}`,
    `L${b.x + b.w},${ty}`,
    `C${b.x + b.w},${my} ${x1},${my} ${x1},${y}`,
    'Z',
  ].join(' ');
}
