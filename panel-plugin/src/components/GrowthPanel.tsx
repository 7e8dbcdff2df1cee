import { PanelProps } from '@grafana/data';
import { PanelDataErrorView } from '@grafana/runtime';
import { useTheme2 } from '@grafana/ui';
import React from 'react';

import { DEFAULT_OPTIONS, GrowthOptions } from '../types';
import { GrowthView } from './GrowthView';

/**
 * The Grafana panel: theme from Grafana, size from the panel (it re-renders on resize),
 * "now" from the dashboard's time range, and Grafana's own message view for wrong-shaped
 * or empty data.
 */
export function GrowthPanel({ data, options, width, height, id, fieldConfig }: PanelProps<GrowthOptions>) {
  const theme = useTheme2();
  const opts = { ...DEFAULT_OPTIONS, ...options };
  return (
    <GrowthView
      frames={data.series}
      options={opts}
      width={width}
      height={height}
      theme={theme}
      now={data.timeRange.to.valueOf()}
      renderMessage={(message, empty) => (
        <PanelDataErrorView panelId={id} fieldConfig={fieldConfig} data={data} message={empty ? undefined : message} />
      )}
    />
  );
}
