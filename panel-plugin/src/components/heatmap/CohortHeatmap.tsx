import { GrafanaTheme2 } from '@grafana/data';
import React, { useId, useMemo } from 'react';

import { heatmapLayout } from '../../layout/heatmap';
import { CohortModel, GrowthOptions } from '../../types';
import { formatCount, formatMoney, formatMonth, formatPercent } from '../../utils/format';
import { followLink } from '../../utils/links';
import { Axis } from '../common/Axis';
import { ColorScaleLegend, Legend } from '../common/Legend';
import { palette as makePalette, retentionDomain, retentionScale } from '../common/palette';
import { Tooltip, useTooltip } from '../common/Tooltip';
import { AverageRow } from './AverageRow';
import { CohortLabels } from './CohortLabels';
import { HeatmapCells } from './HeatmapCells';
import { MaturingPattern } from './MaturingPattern';

interface Props {
  model: CohortModel;
  options: GrowthOptions;
  width: number;
  height: number;
  theme: GrafanaTheme2;
}

/** The cohort triangle: row labels and sizes, cells, the weighted average row, legends. */
export function CohortHeatmap({ model, options, width, height, theme }: Props) {
  const uid = useId().replace(/[^a-zA-Z0-9]/g, '');
  const p = makePalette(theme);
  const layout = useMemo(
    () => heatmapLayout(model, width, height, options.showAverageRow),
    [model, width, height, options.showAverageRow]
  );
  const [minRate, maxRate] = useMemo(
    () => retentionDomain(model.rows.flatMap((r) => r.cells.flatMap((c) => (c.rate === null ? [] : [c.rate])))),
    [model]
  );
  const color = useMemo(
    () => retentionScale(theme, options.heatmapColor, minRate, maxRate),
    [theme, options.heatmapColor, minRate, maxRate]
  );
  const { containerRef, tooltip, show, hide } = useTooltip();
  const hatchId = `hatch-${uid}`;
  const ageLabel = (age: number) => (layout.cellW > 64 ? `Month ${age}` : `M${age}`);
  const hasMaturing = model.rows.some((r) => r.cells.some((c) => c.maturing));
  const sizeLabel = (v: number | null, size: number) =>
    model.basis === 'revenue' && v !== null ? formatMoney(v, options.currency) : formatCount(size);

  const onCell = (event: React.MouseEvent, rowIndex: number, age: number) => {
    const row = model.rows[rowIndex];
    const cell = row.cells.find((c) => c.age === age)!;
    const rows: Array<[string, string]> = [
      [model.basis === 'revenue' ? 'Revenue retention' : 'Retention', formatPercent(cell.rate)],
      [
        model.basis === 'revenue' ? 'Paying customers' : 'Active users',
        cell.retained === null ? '–' : formatCount(cell.retained),
      ],
      [model.basis === 'revenue' ? 'Cohort start MRR' : 'Cohort size', sizeLabel(row.baseMrr, row.size)],
    ];
    if (cell.mrr !== null) {
      rows.splice(2, 0, ['MRR', formatMoney(cell.mrr, options.currency)]);
    }
    show(event, {
      title: `${formatMonth(row.cohort)} cohort · month ${age} (${formatMonth(cell.period)})`,
      rows,
      hint: cell.maturing ? 'Maturing: this month is not over yet' : undefined,
    });
  };
  const onAverage = (event: React.MouseEvent, age: number) => {
    const a = model.average.find((x) => x.age === age)!;
    show(event, {
      title: `Weighted average · month ${age}`,
      rows: [
        ['Retention', formatPercent(a.rate)],
        ['Mature cohorts', String(a.cohorts)],
      ],
      hint: model.basis === 'revenue' ? 'Weighted by each cohort’s starting MRR' : 'Weighted by cohort size',
    });
  };
  const onClick = (event: React.MouseEvent, rowIndex: number, age: number) => {
    const cell = model.rows[rowIndex].cells.find((c) => c.age === age);
    followLink(cell?.link, event);
  };

  const legendW = Math.min(220, Math.max(120, width * 0.25));
  return (
    <div ref={containerRef} style={{ position: 'relative', width, height }} data-testid="cohort-heatmap">
      <svg width={width} height={height} role="img" aria-label="Cohort retention heatmap">
        <MaturingPattern id={hatchId} color={p.text} />
        <Axis
          orientation="top"
          at={layout.gridY - 12}
          palette={p}
          ticks={model.ages.map((age, i) => ({ pos: layout.gridX + (i + 0.5) * layout.cellW, label: ageLabel(age) }))}
        />
        <CohortLabels model={model} layout={layout} palette={p} currency={options.currency} />
        <HeatmapCells
          model={model}
          layout={layout}
          color={color}
          palette={p}
          showValues={options.showCellValues}
          hatchId={hatchId}
          onHover={onCell}
          onLeave={hide}
          onClick={onClick}
        />
        <AverageRow
          model={model}
          layout={layout}
          color={color}
          palette={p}
          currency={options.currency}
          onHover={onAverage}
          onLeave={hide}
        />
        <ColorScaleLegend
          id={`scale-${uid}`}
          x={layout.gridX}
          y={layout.legendY}
          width={legendW}
          color={color}
          min={minRate}
          max={maxRate}
          format={(v) => formatPercent(v, Number.isInteger(Math.round(v * 1000) / 10) ? 0 : 1)}
          palette={p}
        />
        {hasMaturing && (
          <Legend
            x={layout.gridX + legendW + 24}
            y={layout.legendY - 1}
            palette={p}
            items={[{ label: 'Maturing (month not over)', color: p.textWeak, pattern: hatchId }]}
          />
        )}
      </svg>
      <Tooltip tooltip={tooltip} palette={p} width={width} height={height} />
    </div>
  );
}
