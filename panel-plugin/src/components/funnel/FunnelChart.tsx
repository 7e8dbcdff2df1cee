import { GrafanaTheme2 } from '@grafana/data';
import React, { useMemo } from 'react';

import { funnelLayout } from '../../layout/funnel';
import { FunnelModel, GrowthOptions } from '../../types';
import { formatCount, formatPercent } from '../../utils/format';
import { followLink } from '../../utils/links';
import { Legend } from '../common/Legend';
import { palette as makePalette } from '../common/palette';
import { Tooltip, useTooltip } from '../common/Tooltip';
import { BranchFlows } from './BranchFlows';
import { FunnelBars } from './FunnelBars';
import { FunnelTransitions } from './FunnelTransitions';

interface Props {
  model: FunnelModel;
  options: GrowthOptions;
  width: number;
  height: number;
  theme: GrafanaTheme2;
}

const LEGEND_H = 26;

/** Steps as bars, conversion and drop-off between them, branches as flows. */
export function FunnelChart({ model, options, width, height, theme }: Props) {
  const p = makePalette(theme);
  const layout = useMemo(
    () => funnelLayout(model, width, height - LEGEND_H, options.showBranches),
    [model, width, height, options.showBranches]
  );
  const { containerRef, tooltip, show, hide } = useTooltip();

  const onStep = (event: React.MouseEvent, i: number) => {
    const s = model.steps[i];
    const rows: Array<[string, string]> = [
      ['Users', formatCount(s.users)],
      ['Of step 1', formatPercent(s.conversion)],
    ];
    if (s.stepConversion !== null) {
      rows.push(['Of previous step', formatPercent(s.stepConversion)]);
    }
    if (i + 1 < model.steps.length) {
      rows.push(['Dropped off before next', formatCount(s.dropoff)]);
    }
    show(event, { title: `Step ${s.index}: ${s.name}`, rows });
  };
  const onBranch = (event: React.MouseEvent, i: number, j: number) => {
    const s = model.steps[i];
    const b = s.branches[j];
    show(event, {
      title: `After ${s.name}: ${b.next === '(none)' ? 'nothing within the window' : b.next}`,
      rows: [
        ['Users', formatCount(b.users)],
        ['Of the drop-off', formatPercent(s.dropoff > 0 ? b.users / s.dropoff : null)],
        ['Of the step', formatPercent(s.users > 0 ? b.users / s.users : null)],
      ],
    });
  };
  const legend = [
    { label: 'Reached step', color: p.primary },
    { label: 'Went on', color: p.primaryFaded },
    { label: 'Dropped off', color: p.dropoff },
    ...(options.showBranches ? [{ label: 'Went instead to', color: p.branch }] : []),
  ];
  return (
    <div ref={containerRef} style={{ position: 'relative', width, height }} data-testid="funnel">
      <svg width={width} height={height} role="img" aria-label="Funnel with branches">
        {options.showBranches && (
          <BranchFlows
            model={model}
            layout={layout}
            width={width}
            palette={p}
            onHover={onBranch}
            onLeave={hide}
            onClick={(e, i, j) => followLink(model.steps[i].branches[j].link, e)}
          />
        )}
        <FunnelBars
          model={model}
          layout={layout}
          palette={p}
          onHover={onStep}
          onLeave={hide}
          onClick={(e, i) => followLink(model.steps[i].link, e)}
        />
        <FunnelTransitions model={model} layout={layout} palette={p} />
        <Legend x={width > 720 ? layout.labelW : 0} y={height - LEGEND_H + 8} palette={p} items={legend} />
      </svg>
      <Tooltip tooltip={tooltip} palette={p} width={width} height={height} />
    </div>
  );
}
