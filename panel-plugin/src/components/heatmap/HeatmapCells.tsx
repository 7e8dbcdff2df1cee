import React from 'react';

import { CohortModel } from '../../types';
import { formatPercent } from '../../utils/format';
import { HeatmapLayout } from '../../layout/heatmap';
import { Palette } from '../common/palette';

interface Props {
  model: CohortModel;
  layout: HeatmapLayout;
  color: (rate: number) => string;
  palette: Palette;
  showValues: boolean;
  hatchId: string;
  onHover: (event: React.MouseEvent, row: number, age: number) => void;
  onLeave: () => void;
  onClick: (event: React.MouseEvent, row: number, age: number) => void;
}

/** One rect per cohort cell, coloured by retention, with its value and the maturing hatch. */
export function HeatmapCells({ model, layout, color, palette, showValues, hatchId, onHover, onLeave, onClick }: Props) {
  const fontSize = Math.max(9, Math.min(12, layout.cellH * 0.36, layout.cellW * 0.2));
  return (
    <g className="heatmap-cells">
      {layout.cells.map((box) => {
        const row = model.rows[box.row];
        const cell = row.cells.find((c) => c.age === box.age)!;
        const fill = cell.rate === null ? palette.surface : color(cell.rate);
        return (
          <g
            key={`${row.cohort}-${box.age}`}
            data-testid="heatmap-cell"
            data-cohort={row.cohort}
            data-age={box.age}
            data-rate={cell.rate ?? ''}
            data-maturing={cell.maturing ? 'true' : 'false'}
            onMouseMove={(e) => onHover(e, box.row, box.age)}
            onMouseLeave={onLeave}
            onClick={(e) => onClick(e, box.row, box.age)}
            style={{ cursor: cell.link?.field.getLinks ? 'pointer' : 'default' }}
          >
            <rect
              x={box.x + 1}
              y={box.y + 1}
              width={Math.max(0, box.w - 2)}
              height={Math.max(0, box.h - 2)}
              rx={2}
              fill={fill}
            />
            {cell.maturing && (
              <rect
                className="maturing"
                x={box.x + 1}
                y={box.y + 1}
                width={Math.max(0, box.w - 2)}
                height={Math.max(0, box.h - 2)}
                rx={2}
                fill={`url(#${hatchId})`}
                stroke={palette.textWeak}
                strokeDasharray="3 2"
                strokeWidth={1}
              />
            )}
            {showValues && box.w > 28 && box.h > 12 && (
              <text
                x={box.x + box.w / 2}
                y={box.y + box.h / 2}
                dy="0.35em"
                textAnchor="middle"
                fill={palette.contrastText(fill)}
                fontSize={fontSize}
                fontFamily={palette.fontFamily}
                style={{ fontVariantNumeric: 'tabular-nums', pointerEvents: 'none' }}
              >
                {formatPercent(cell.rate, box.w > 52 ? 1 : 0)}
              </text>
            )}
          </g>
        );
      })}
    </g>
  );
}
