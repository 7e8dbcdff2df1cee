import React from 'react';

import { branchPath, FunnelLayout } from '../../layout/funnel';
import { FunnelModel } from '../../types';
import { formatCount, formatPercent } from '../../utils/format';
import { fade, Palette } from '../shared/palette';

interface Props {
  model: FunnelModel;
  layout: FunnelLayout;
  palette: Palette;
  onHover: (event: React.MouseEvent, step: number, branch: number) => void;
  onLeave: () => void;
  onClick: (event: React.MouseEvent, step: number, branch: number) => void;
}

/** Where users went instead of the next step: flows from the drop-off into branch boxes. */
export function BranchFlows({ model, layout, palette, onHover, onLeave, onClick }: Props) {
  return (
    <g className="funnel-branches">
      {layout.branches.map((b) => {
        const step = model.steps[b.step];
        const br = step.branches[b.branch];
        const share = step.dropoff > 0 ? br.users / step.dropoff : null;
        const label = br.next === '(none)' ? 'no next step' : br.next;
        const wide = b.w > label.length * 7 + 50;
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
            <path d={branchPath(b)} fill={fade(palette.branch, 0.28)} stroke={fade(palette.branch, 0.55)} strokeWidth={0.5} />
            <rect x={b.x} y={b.y} width={Math.max(1, b.w)} height={b.h} rx={3} fill={palette.branch} />
            {wide ? (
              <text x={b.x + 8} y={b.y + b.h / 2} dy="0.35em" fill={palette.contrastText(palette.branch)} fontSize={12} fontWeight={500} fontFamily={palette.fontFamily}>
                {`${label} · ${formatCount(br.users)} (${formatPercent(share, 0)})`}
              </text>
            ) : (
              <text x={b.x} y={b.y + b.h + 12} fill={palette.textWeak} fontSize={11} fontFamily={palette.fontFamily}>
                {`${label} · ${formatCount(br.users)}`}
              </text>
            )}
          </g>
        );
      })}
    </g>
  );
}
