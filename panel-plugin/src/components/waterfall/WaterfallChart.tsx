import { GrafanaTheme2 } from '@grafana/data';
import React, { useMemo } from 'react';

import { WaterfallBar, waterfallLayout, waterfallSteps } from '../../layout/waterfall';
import { GrowthOptions, WaterfallModel } from '../../types';
import { formatMoney, formatMonth, formatPercent, formatShortMonth, formatSignedMoney } from '../../utils/format';
import { followLink, linksFor } from '../../utils/links';
import { Axis } from '../common/Axis';
import { Legend } from '../common/Legend';
import { palette as makePalette } from '../common/palette';
import { Tooltip, useTooltip } from '../common/Tooltip';
import { WaterfallBars } from './WaterfallBars';
import { WaterfallConnectors } from './WaterfallConnectors';

interface Props {
  model: WaterfallModel;
  options: GrowthOptions;
  width: number;
  height: number;
  theme: GrafanaTheme2;
}

/** Starting MRR, the movements, ending MRR; click a movement to drill down. */
export function WaterfallChart({ model, options, width, height, theme }: Props) {
  const p = makePalette(theme);
  const mode = options.waterfallMode;
  const steps = useMemo(
    () => waterfallSteps(model, mode, mode === 'range' ? formatMonth : formatShortMonth),
    [model, mode]
  );
  const layout = useMemo(() => waterfallLayout(steps, width, height), [steps, width, height]);
  const { containerRef, tooltip, show, hide } = useTooltip();
  const cur = options.currency;
  const bottom = layout.plot.y + layout.plot.h;
  const ticks = layout.y.ticks(5).map((v) => ({ pos: layout.y(v), label: formatMoney(v, cur) }));
  const periods = model.periods.length;
  const start = model.periods[0].mrrStart;

  const onHover = (event: React.MouseEvent, bar: WaterfallBar) => {
    const s = bar.step;
    const when =
      s.period !== undefined && mode === 'periods'
        ? formatMonth(s.period)
        : `${formatMonth(model.periods[0].time)} – ${formatMonth(model.periods[periods - 1].time)}`;
    const rows: Array<[string, string]> =
      s.kind === 'start' || s.kind === 'end'
        ? [['MRR', formatMoney(s.value, cur)]]
        : [
            ['Change', formatSignedMoney(s.value, cur)],
            ['MRR before', formatMoney(s.from, cur)],
            ['MRR after', formatMoney(s.to, cur)],
            ['Of starting MRR', formatPercent(start !== 0 ? s.value / start : null)],
          ];
    const title = s.kind === 'start' ? 'Starting MRR' : s.kind === 'end' ? 'Ending MRR' : s.label;
    const links = linksFor(s.link);
    show(event, {
      title: `${title} · ${s.kind === 'start' ? formatMonth(model.periods[0].time) : when}`,
      rows,
      hint:
        s.kind === 'unreconciled'
          ? 'MRR at the start does not match the previous end: a month is missing'
          : links.length
            ? `Click: ${links[0].title}`
            : undefined,
    });
  };
  const onClick = (event: React.MouseEvent, bar: WaterfallBar) => followLink(bar.step.link, event);

  // x labels: every bar in range mode; one per month in periods mode
  const xTicks =
    mode === 'range' ? layout.bars.map((b) => ({ pos: b.x + b.w / 2, label: b.step.label })) : groupTicks(layout.bars);
  const legend = [
    { label: 'MRR', color: p.total },
    { label: 'Increase', color: p.up },
    { label: 'Decrease', color: p.down },
    { label: 'FX impact', color: p.fx },
  ];
  return (
    <div ref={containerRef} style={{ position: 'relative', width, height }} data-testid="waterfall">
      <svg width={width} height={height} role="img" aria-label="Revenue waterfall">
        <Axis orientation="left" at={layout.plot.x} ticks={ticks} palette={p} gridLength={layout.plot.w} />
        <line x1={layout.plot.x} x2={layout.plot.x + layout.plot.w} y1={bottom} y2={bottom} stroke={p.border} />
        <WaterfallConnectors layout={layout} palette={p} />
        <WaterfallBars
          layout={layout}
          palette={p}
          currency={cur}
          showValues={mode === 'range' || layout.bars[0].w >= 30}
          onHover={onHover}
          onLeave={hide}
          onClick={onClick}
        />
        <Axis orientation="bottom" at={bottom + 6} ticks={xTicks} palette={p} />
        <Legend x={layout.plot.x} y={height - 18} palette={p} items={legend} />
        {layout.truncated && (
          <text
            x={layout.plot.x + layout.plot.w}
            y={height - 8}
            textAnchor="end"
            fill={p.textWeak}
            fontSize={10}
            fontFamily={p.fontFamily}
          >
            Axis starts at {formatMoney(layout.y.domain()[0], cur)}; MRR bars are cut
          </text>
        )}
      </svg>
      <Tooltip tooltip={tooltip} palette={p} width={width} height={height} />
    </div>
  );
}

/** Periods mode: one label per month, centred under that month's movements. */
function groupTicks(bars: WaterfallBar[]) {
  const groups = new Map<number, { min: number; max: number; label: string }>();
  for (const b of bars) {
    if (b.step.kind !== 'movement' || b.step.period === undefined) {
      continue;
    }
    const g = groups.get(b.step.period) ?? { min: Infinity, max: -Infinity, label: formatShortMonth(b.step.period) };
    g.min = Math.min(g.min, b.x);
    g.max = Math.max(g.max, b.x + b.w);
    groups.set(b.step.period, g);
  }
  const ticks = [...groups.values()].map((g) => ({ pos: (g.min + g.max) / 2, label: g.label }));
  const first = bars[0];
  const last = bars[bars.length - 1];
  return [{ pos: first.x + first.w / 2, label: 'Start' }, ...ticks, { pos: last.x + last.w / 2, label: 'End' }];
}
