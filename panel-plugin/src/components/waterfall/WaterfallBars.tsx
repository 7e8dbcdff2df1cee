import React from 'react';

import { WaterfallBar, WaterfallLayout } from '../../layout/waterfall';
import { formatMoney, formatSignedMoney } from '../../utils/format';
import { movementColor, Palette } from '../common/palette';

interface Props {
  layout: WaterfallLayout;
  palette: Palette;
  currency: string;
  showValues: boolean;
  onHover: (event: React.MouseEvent, bar: WaterfallBar) => void;
  onLeave: () => void;
  onClick: (event: React.MouseEvent, bar: WaterfallBar) => void;
}

export function barColor(bar: WaterfallBar, p: Palette): string {
  const s = bar.step;
  if (s.kind === 'start' || s.kind === 'end') {
    return p.total;
  }
  if (s.kind === 'unreconciled') {
    return p.textWeak;
  }
  return movementColor(p, s.movement!, s.value);
}

/** The bars: totals from the axis, movements floating from the previous bar's end. */
export function WaterfallBars({ layout, palette, currency, showValues, onHover, onLeave, onClick }: Props) {
  const bottom = layout.plot.y + layout.plot.h;
  return (
    <g className="waterfall-bars">
      {layout.bars.map((bar) => {
        const s = bar.step;
        const total = s.kind === 'start' || s.kind === 'end';
        const fill = barColor(bar, palette);
        const label = total ? formatMoney(s.value, currency) : formatSignedMoney(s.value, currency);
        const above = s.value >= 0 || total;
        return (
          <g
            key={s.key}
            data-testid="waterfall-bar"
            data-kind={s.kind}
            data-movement={s.movement ?? s.kind}
            data-from={s.from}
            data-to={s.to}
            onMouseMove={(e) => onHover(e, bar)}
            onMouseLeave={onLeave}
            onClick={(e) => onClick(e, bar)}
            style={{ cursor: s.link?.field.getLinks ? 'pointer' : 'default' }}
          >
            <rect x={bar.x} y={bar.y} width={bar.w} height={bar.h} rx={2} fill={fill} fillOpacity={total ? 1 : 0.9} />
            {bar.broken && (
              <path
                d={`M${bar.x - 2},${bottom - 9} l${bar.w / 2 + 2},-4 l${bar.w / 2 + 2},4 v4 l${-(bar.w / 2 + 2)},-4 l${-(bar.w / 2 + 2)},4 Z`}
                fill={palette.background}
              />
            )}
            {showValues && bar.w >= 22 && (
              <text
                x={bar.x + bar.w / 2}
                y={above ? bar.y - 5 : bar.y + bar.h + 12}
                textAnchor="middle"
                fill={total ? palette.text : palette.textWeak}
                fontSize={bar.w > 40 ? 11 : 9}
                fontWeight={total ? 600 : 400}
                fontFamily={palette.fontFamily}
                style={{ fontVariantNumeric: 'tabular-nums', pointerEvents: 'none' }}
              >
                {label}
              </text>
            )}
          </g>
        );
      })}
    </g>
  );
}
