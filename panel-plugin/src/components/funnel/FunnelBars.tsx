import React from 'react';

import { FunnelLayout } from '../../layout/funnel';
import { FunnelModel } from '../../types';
import { formatCount, formatPercent } from '../../utils/format';
import { Palette } from '../common/palette';

interface Props {
  model: FunnelModel;
  layout: FunnelLayout;
  palette: Palette;
  onHover: (event: React.MouseEvent, step: number) => void;
  onLeave: () => void;
  onClick: (event: React.MouseEvent, step: number) => void;
}

/** One bar per step, width proportional to its users, with the step's name and count. */
export function FunnelBars({ model, layout, palette, onHover, onLeave, onClick }: Props) {
  return (
    <g className="funnel-bars">
      {model.steps.map((s, i) => {
        const b = layout.bars[i];
        const cy = b.y + b.h / 2;
        const inside = b.w > 70; // else the count is only in the label column
        return (
          <g
            key={s.index}
            data-testid="funnel-step"
            data-step={s.name}
            onMouseMove={(e) => onHover(e, i)}
            onMouseLeave={onLeave}
            onClick={(e) => onClick(e, i)}
            style={{ cursor: s.link?.field.getLinks ? 'pointer' : 'default' }}
          >
            <text
              x={0}
              y={cy - 8}
              dy="0.35em"
              fill={palette.text}
              fontSize={13}
              fontWeight={500}
              fontFamily={palette.fontFamily}
            >
              {`${s.index}. ${s.name}`}
            </text>
            <text x={0} y={cy + 9} dy="0.35em" fill={palette.textWeak} fontSize={11} fontFamily={palette.fontFamily}>
              {i === 0
                ? `${formatCount(s.users)} entered`
                : `${formatCount(s.users)} · ${formatPercent(s.conversion)} of step 1`}
            </text>
            <rect
              data-testid="funnel-bar"
              x={b.x}
              y={b.y}
              width={Math.max(0, b.w)}
              height={b.h}
              rx={3}
              fill={palette.primary}
            />
            {inside && (
              <text
                x={b.x + 10}
                y={cy}
                dy="0.35em"
                fill={palette.contrastText(palette.primary)}
                fontSize={13}
                fontWeight={600}
                fontFamily={palette.fontFamily}
                style={{ pointerEvents: 'none', fontVariantNumeric: 'tabular-nums' }}
              >
                {formatCount(s.users)}
              </text>
            )}
          </g>
        );
      })}
    </g>
  );
}
