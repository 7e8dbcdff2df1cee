import React from 'react';

import { FunnelLayout } from '../../layout/funnel';
import { FunnelModel } from '../../types';
import { formatCount, formatPercent } from '../../utils/format';
import { Palette } from '../common/palette';

interface Props {
  model: FunnelModel;
  layout: FunnelLayout;
  palette: Palette;
}

/**
 * Between two steps: the band of users who went on (with the step conversion) and the
 * shaded part of the upper bar whose users dropped off (with the drop-off count).
 */
export function FunnelTransitions({ model, layout, palette }: Props) {
  return (
    <g className="funnel-transitions">
      {layout.continuations.map((c, i) => {
        const next = model.steps[i + 1];
        const step = model.steps[i];
        const d = layout.dropoffs[i];
        const cy = c.y + c.h / 2;
        const dropShare = step.users > 0 ? step.dropoff / step.users : null;
        return (
          <g key={i} data-testid="funnel-transition">
            <rect x={c.x} y={c.y} width={Math.max(0, c.w)} height={c.h} fill={palette.primaryFaded} />
            <rect
              data-testid="funnel-dropoff"
              x={d.x}
              y={d.y}
              width={Math.max(0, d.w)}
              height={d.h}
              fill={palette.dropoff}
              style={{ pointerEvents: 'none' }}
            />
            <text
              data-testid="funnel-conversion"
              x={0}
              y={cy - 8}
              dy="0.35em"
              fill={palette.up}
              fontSize={12}
              fontWeight={600}
              fontFamily={palette.fontFamily}
            >
              {`↓ ${formatPercent(next.stepConversion)} converted`}
            </text>
            <text
              data-testid="funnel-dropoff-label"
              x={0}
              y={cy + 9}
              dy="0.35em"
              fill={palette.down}
              fontSize={11}
              fontFamily={palette.fontFamily}
            >
              {`${formatCount(step.dropoff)} dropped off (${formatPercent(dropShare)})`}
            </text>
          </g>
        );
      })}
    </g>
  );
}
