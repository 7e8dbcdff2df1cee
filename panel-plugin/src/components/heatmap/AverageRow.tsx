import React from 'react';

import { CohortModel } from '../../types';
import { formatCount, formatMoney, formatPercent } from '../../utils/format';
import { HeatmapLayout } from '../../layout/heatmap';
import { Palette } from '../common/palette';

interface Props {
  model: CohortModel;
  layout: HeatmapLayout;
  color: (rate: number) => string;
  palette: Palette;
  currency: string;
  onHover: (event: React.MouseEvent, age: number) => void;
  onLeave: () => void;
}

/** The weighted average retention per age, under the triangle (mature cells only). */
export function AverageRow({ model, layout, color, palette, currency, onHover, onLeave }: Props) {
  if (layout.averageY === null) {
    return null;
  }
  const y = layout.averageY;
  const cy = y + layout.cellH / 2;
  const total =
    model.basis === 'revenue'
      ? formatMoney(
          model.rows.reduce((s, r) => s + (r.baseMrr ?? 0), 0),
          currency
        )
      : formatCount(model.rows.reduce((s, r) => s + r.size, 0));
  return (
    <g className="average-row">
      <line x1={layout.labelX} x2={layout.width - 12} y1={y - 4} y2={y - 4} stroke={palette.grid} />
      <text
        x={layout.labelX}
        y={cy}
        dy="0.35em"
        fill={palette.text}
        fontSize={12}
        fontWeight={500}
        fontFamily={palette.fontFamily}
      >
        Weighted avg
      </text>
      <text
        x={layout.gridX - 10}
        y={cy}
        dy="0.35em"
        textAnchor="end"
        fill={palette.textWeak}
        fontSize={12}
        fontFamily={palette.fontFamily}
      >
        {total}
      </text>
      {model.average.map((a, i) => {
        const x = layout.gridX + i * layout.cellW;
        const fill = a.rate === null ? palette.surface : color(a.rate);
        return (
          <g
            key={a.age}
            data-testid="average-cell"
            data-age={a.age}
            data-rate={a.rate ?? ''}
            onMouseMove={(e) => onHover(e, a.age)}
            onMouseLeave={onLeave}
          >
            <rect
              x={x + 1}
              y={y + 1}
              width={Math.max(0, layout.cellW - 2)}
              height={Math.max(0, layout.cellH - 2)}
              rx={2}
              fill={fill}
              stroke={palette.border}
              strokeWidth={1}
            />
            {layout.cellW > 28 && (
              <text
                x={x + layout.cellW / 2}
                y={cy}
                dy="0.35em"
                textAnchor="middle"
                fontWeight={600}
                fill={palette.contrastText(fill)}
                fontSize={Math.max(9, Math.min(12, layout.cellH * 0.36, layout.cellW * 0.2))}
                fontFamily={palette.fontFamily}
              >
                {formatPercent(a.rate, layout.cellW > 52 ? 1 : 0)}
              </text>
            )}
          </g>
        );
      })}
    </g>
  );
}
