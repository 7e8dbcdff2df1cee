import React from 'react';

import { WaterfallLayout } from '../../layout/waterfall';
import { Palette } from '../common/palette';

interface Props {
  layout: WaterfallLayout;
  palette: Palette;
}

/** Dashed lines from each bar's end to the next bar's start: the running MRR. */
export function WaterfallConnectors({ layout, palette }: Props) {
  const lines = [];
  for (let i = 0; i + 1 < layout.bars.length; i++) {
    const a = layout.bars[i];
    const b = layout.bars[i + 1];
    const y = layout.y(a.step.to);
    lines.push(
      <line
        key={i}
        x1={a.x + a.w}
        x2={b.x}
        y1={y}
        y2={y}
        stroke={palette.textWeak}
        strokeWidth={1}
        strokeDasharray="3 3"
        strokeOpacity={0.8}
      />
    );
  }
  return <g className="waterfall-connectors">{lines}</g>;
}
