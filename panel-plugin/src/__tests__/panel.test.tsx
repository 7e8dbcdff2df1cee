import { dateTime, LoadingState, PanelProps } from '@grafana/data';
import { render, screen } from '@testing-library/react';
import React from 'react';

import { GrowthPanel } from '../components/GrowthPanel';
import { plugin } from '../module';
import { META, recordedFrames } from '../testing/fixtures';
import { DEFAULT_OPTIONS, GrowthOptions } from '../types';

function props(series: PanelProps['data']['series'], options: Partial<GrowthOptions>): PanelProps<GrowthOptions> {
  const to = dateTime(META.to);
  const timeRange = { from: dateTime(META.from), to, raw: { from: 'now-6M', to: 'now' } };
  return {
    id: 1,
    data: { series, state: LoadingState.Done, timeRange },
    timeRange,
    timeZone: 'utc',
    options: { ...DEFAULT_OPTIONS, ...options },
    fieldConfig: { defaults: {}, overrides: [] },
    width: 800,
    height: 400,
    transparent: false,
    renderCounter: 0,
    title: 'test',
    eventBus: {} as never,
    onOptionsChange: jest.fn(),
    onFieldConfigChange: jest.fn(),
    replaceVariables: (s: string) => s,
    onChangeTimeRange: jest.fn(),
  } as unknown as PanelProps<GrowthOptions>;
}

describe('GrowthPanel inside Grafana', () => {
  it('draws the chosen visualisation from the recorded frames', () => {
    const { rerender } = render(
      <GrowthPanel {...props(recordedFrames('cohort-heatmap'), { visualisation: 'cohort-heatmap' })} />
    );
    expect(screen.getByTestId('cohort-heatmap')).toBeInTheDocument();
    rerender(<GrowthPanel {...props(recordedFrames('funnel'), { visualisation: 'funnel' })} />);
    expect(screen.getByTestId('funnel')).toBeInTheDocument();
    rerender(<GrowthPanel {...props(recordedFrames('waterfall'), { visualisation: 'waterfall' })} />);
    expect(screen.getByTestId('waterfall')).toBeInTheDocument();
  });

  it('uses the dashboard time range end as "now" for maturing cells', () => {
    const { container } = render(
      <GrowthPanel {...props(recordedFrames('cohort-heatmap'), { visualisation: 'cohort-heatmap' })} />
    );
    const maturing = container.querySelectorAll('[data-maturing="true"]');
    expect(maturing.length).toBeGreaterThan(0);
  });

  it("shows Grafana's data error view with the parser's message for wrong-shaped data", () => {
    render(<GrowthPanel {...props(recordedFrames('funnel'), { visualisation: 'waterfall' })} />);
    expect(screen.getByText(/Unable to render data: Revenue waterfall needs "mrr_start"/)).toBeInTheDocument();
    expect(screen.queryByTestId('waterfall')).toBeNull();
  });

  it('shows the plain no-data view for empty data', () => {
    const { container } = render(<GrowthPanel {...props([], { visualisation: 'funnel' })} />);
    expect(container.textContent).toBe('Unable to render data: .'); // runtime's default view; Grafana's own says "No data"
    expect(screen.queryByTestId('funnel')).toBeNull();
  });
});

describe('module', () => {
  it('registers the panel with its options and their defaults', () => {
    const builderOptions = plugin.getPanelOptionsSupplier();
    expect(plugin.panel).toBe(GrowthPanel);
    const paths: string[] = [];
    const builder = new Proxy(
      {},
      {
        get: (_, method) => (item: { path: string }) => {
          if (String(method).startsWith('add')) {
            paths.push(item.path);
          }
          return builder;
        },
      }
    );
    builderOptions(builder as never, { data: [] } as never);
    expect(paths.sort()).toEqual(Object.keys(DEFAULT_OPTIONS).sort());
  });
});
