import React from 'react';

import { branchPath, FunnelLayout } from '../../layout/funnel';
import { FunnelModel } from '../../types';
import { formatCount, formatPercent } from '../../utils/format';
import { fade, Palette } from '../common/palette';

interface Props {
  model: FunnelModel;
  layout: FunnelLayout;
  width: number;
  palette: Palette;
  onHover: (event: React.MouseEvent, step: number, branch: number) => void;
  onLeave: () => void;
  onClick: (event: React.MouseEvent, step: number, branch: number) => void;
}

interface HangingLabel {
  key: string;
  x: number; // leader line
  y0: number;
  y: number; // text baseline
  left: boolean;
  text: string;
}

const LINE = 13;

/** Where users went instead of the next step: flows from the drop-off into branch boxes. */
export function BranchFlows({ model, layout, width, palette, onHover, onLeave, onClick }: Props) {
  // labels that do not fit in their box hang under it, one line each so none overlap;
  // they are drawn after all boxes and leaders, over a halo of the panel background
  const lines = new Map<number, number>();
  const maxLines = Math.max(3, Math.floor((layout.gap - 6) / LINE));
  const hanging: HangingLabel[] = [];
  const groups = layout.branches.map((b) => {
    const step = model.steps[b.step];
    const br = step.branches[b.branch];
    const share = step.dropoff > 0 ? br.users / step.dropoff : null;
    const label = br.next === '(none)' ? 'nothing else' : br.next;
    const wide = b.w > label.length * 7 + 90;
    if (!wide) {
      const line = lines.get(b.step) ?? 0;
      lines.set(b.step, line + 1);
      const text = `${label} · ${formatCount(br.users)}`;
      const left = b.x + 4 + text.length * 6.2 < width;
      if (line < maxLines) {
        hanging.push({
          key: `${b.step}-${br.next}`,
          x: left ? b.x + 0.5 : b.x + b.w - 0.5,
          y0: b.y + b.h,
          y: b.y + b.h + 12 + line * LINE,
          left,
          text,
        });
      }
    }
    return (
      <g
        key={`${b.step}-${br.next}`}
        data-testid="funnel-branch"
        data-next={br.next}
        onMouseMove={(e) => onHover(e, b.step, b.branch)}
        onMouseLeave={onLeave}
        onClick={(e) => onClick(e, b.step, b.branch)}
        style={{ cursor: br.link?.field.getLinks ? 'pointer' : 'default' }}
      >
        <path
          d={branchPath(b)}
          fill={fade(palette.branch, 0.28)}
          stroke={fade(palette.branch, 0.55)}
          strokeWidth={0.5}
        />
        <rect x={b.x} y={b.y} width={Math.max(1, b.w)} height={b.h} rx={3} fill={palette.branch} />
        {wide && (
          <text
            x={b.x + 8}
            y={b.y + b.h / 2}
            dy="0.35em"
            fill={palette.contrastText(palette.branch)}
            fontSize={12}
            fontWeight={500}
            fontFamily={palette.fontFamily}
          >
            {`${label} · ${formatCount(br.users)} (${formatPercent(share, 0)})`}
          </text>
        )}
      </g>
    );
  });
  return (
    <g className="funnel-branches">
      {groups}
      {hanging.map((h) => (
        <line key={`l-${h.key}`} x1={h.x} x2={h.x} y1={h.y0} y2={h.y - 4} stroke={palette.textWeak} strokeWidth={1} />
      ))}
      {hanging.map((h) => (
        <text
          key={`t-${h.key}`}
          data-testid="funnel-branch-label"
          x={h.left ? h.x + 3.5 : h.x - 3.5}
          y={h.y}
          textAnchor={h.left ? 'start' : 'end'}
          fill={palette.textWeak}
          stroke={palette.background}
          strokeWidth={3}
          paintOrder="stroke"
          fontSize={11}
          fontFamily={palette.fontFamily}
        >
          {h.text}
        </text>
      ))}
    </g>
  );
}
