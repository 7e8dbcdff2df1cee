import React from 'react';

import { CohortModel } from '../../types';
import { formatCount, formatMoney, formatMonth } from '../../utils/format';
import { HeatmapLayout } from '../../layout/heatmap';
import { Palette } from '../common/palette';

interface Props {
  model: CohortModel;
  layout: HeatmapLayout;
  palette: Palette;
  currency: string;
}

/** The row start: cohort month and cohort size (members, or starting MRR for revenue). */
export function CohortLabels({ model, layout, palette, currency }: Props) {
  const text = { fontSize: 12, fontFamily: palette.fontFamily };
  const sizeRight = layout.gridX - 10;
  return (
    <g className="cohort-labels">
      <text
        x={layout.labelX}
        y={layout.gridY - 12}
        fill={palette.textWeak}
        fontSize={11}
        fontWeight={500}
        fontFamily={palette.fontFamily}
      >
        Cohort
      </text>
      <text
        x={sizeRight}
        y={layout.gridY - 12}
        textAnchor="end"
        fill={palette.textWeak}
        fontSize={11}
        fontWeight={500}
        fontFamily={palette.fontFamily}
      >
        {model.basis === 'revenue' ? 'Start MRR' : 'Users'}
      </text>
      {model.rows.map((row, i) => {
        const cy = layout.rowY[i] + layout.cellH / 2;
        return (
          <g key={row.cohort} data-testid="cohort-row-label">
            <text x={layout.labelX} y={cy} dy="0.35em" fill={palette.text} {...text}>
              {formatMonth(row.cohort)}
            </text>
            <text
              data-testid="cohort-size"
              x={sizeRight}
              y={cy}
              dy="0.35em"
              textAnchor="end"
              fill={palette.textWeak}
              {...text}
              style={{ fontVariantNumeric: 'tabular-nums' }}
            >
              {model.basis === 'revenue' && row.baseMrr !== null
                ? formatMoney(row.baseMrr, currency)
                : formatCount(row.size)}
            </text>
          </g>
        );
      })}
    </g>
  );
}
