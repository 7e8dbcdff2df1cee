import React from 'react';

import { Palette } from './palette';

export interface Tick {
  pos: number;
  label: string;
}

interface Props {
  orientation: 'left' | 'top' | 'bottom';
  /** x of a left axis, y of a top/bottom axis. */
  at: number;
  ticks: Tick[];
  palette: Palette;
  /** Draw grid lines across the plot this long (left axis only). */
  gridLength?: number;
  title?: string;
  titlePos?: number;
}

/** Tick labels (and optional grid lines) drawn with React so tests can read them. */
export function Axis({ orientation, at, ticks, palette, gridLength, title, titlePos }: Props) {
  const common = { fill: palette.textWeak, fontSize: 11, fontFamily: palette.fontFamily };
  return (
    <g className={`growth-axis growth-axis-${orientation}`}>
      {ticks.map((t) =>
        orientation === 'left' ? (
          <g key={`${t.label}-${t.pos}`}>
            {gridLength !== undefined && (
              <line x1={at} x2={at + gridLength} y1={t.pos} y2={t.pos} stroke={palette.grid} strokeWidth={1} />
            )}
            <text x={at - 8} y={t.pos} dy="0.32em" textAnchor="end" {...common}>
              {t.label}
            </text>
          </g>
        ) : (
          <text
            key={`${t.label}-${t.pos}`}
            x={t.pos}
            y={at}
            dy={orientation === 'top' ? '-0.4em' : '1em'}
            textAnchor="middle"
            {...common}
          >
            {t.label}
          </text>
        )
      )}
      {title && (
        <text
          x={orientation === 'left' ? at : (titlePos ?? 0)}
          y={orientation === 'left' ? (titlePos ?? 0) : at}
          dy={orientation === 'top' ? '-1.9em' : orientation === 'bottom' ? '2.4em' : 0}
          textAnchor={orientation === 'left' ? 'end' : 'middle'}
          {...common}
          fontWeight={500}
        >
          {title}
        </text>
      )}
    </g>
  );
}
