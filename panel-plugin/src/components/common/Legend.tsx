import React from 'react';

import { Palette } from './palette';

export interface LegendItem {
  label: string;
  color: string;
  /** A pattern id to fill the swatch with instead of the colour (e.g. maturing hatch). */
  pattern?: string;
}

interface Props {
  items: LegendItem[];
  x: number;
  y: number;
  palette: Palette;
}

/** A one-line legend of swatches and labels, in SVG, laid out left to right. */
export function Legend({ items, x, y, palette }: Props) {
  // left edge of each item: swatch, gap, label (about 6.4 px a character at 11 px), spacing
  const starts = items.map((_, i) => x + items.slice(0, i).reduce((s, it) => s + 36 + it.label.length * 6.4, 0));
  return (
    <g className="growth-legend" transform={`translate(0, ${y})`}>
      {items.map((item, i) => {
        const gx = starts[i];
        return (
          <g key={item.label} transform={`translate(${gx}, 0)`}>
            <rect
              width={12}
              height={12}
              rx={2}
              fill={item.pattern ? `url(#${item.pattern})` : item.color}
              stroke={item.pattern ? item.color : 'none'}
            />
            <text x={18} y={6} dy="0.35em" fill={palette.textWeak} fontSize={11} fontFamily={palette.fontFamily}>
              {item.label}
            </text>
          </g>
        );
      })}
    </g>
  );
}

interface ScaleProps {
  x: number;
  y: number;
  width: number;
  color: (t: number) => string;
  min: number;
  max: number;
  format: (v: number) => string;
  palette: Palette;
  id: string;
}

/** A horizontal gradient bar for a continuous colour scale, labelled at its ends and middle. */
export function ColorScaleLegend({ x, y, width, color, min, max, format, palette, id }: ScaleProps) {
  const stops = Array.from({ length: 11 }, (_, i) => i / 10);
  return (
    <g className="growth-color-scale" transform={`translate(${x}, ${y})`}>
      <defs>
        <linearGradient id={id} x1="0" x2="1" y1="0" y2="0">
          {stops.map((t) => (
            <stop key={t} offset={t} stopColor={color(min + t * (max - min))} />
          ))}
        </linearGradient>
      </defs>
      <rect width={width} height={10} rx={2} fill={`url(#${id})`} />
      {[0, 0.5, 1].map((t) => (
        <text
          key={t}
          x={t * width}
          y={22}
          textAnchor={t === 0 ? 'start' : t === 1 ? 'end' : 'middle'}
          fill={palette.textWeak}
          fontSize={11}
          fontFamily={palette.fontFamily}
        >
          {format(min + t * (max - min))}
        </text>
      ))}
    </g>
  );
}
