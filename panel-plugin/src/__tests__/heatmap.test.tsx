import { fireEvent, render } from '@testing-library/react';
import { rgb } from 'd3';
import React from 'react';

import { GrowthView } from '../components/GrowthView';
import { darkTheme, influxRows, lightTheme, NOW, recordedFrames, tableFrame } from '../testing/fixtures';
import { DEFAULT_OPTIONS, GrowthOptions } from '../types';

const options: GrowthOptions = { ...DEFAULT_OPTIONS, visualisation: 'cohort-heatmap' };

function draw(
  frames = recordedFrames('cohort-heatmap'),
  width = 900,
  height = 420,
  theme = lightTheme,
  opts = options
) {
  return render(
    <GrowthView
      frames={frames}
      options={opts}
      width={width}
      height={height}
      theme={theme}
      now={NOW}
      renderMessage={(m) => <p>{m}</p>}
    />
  );
}

function cellRects(container: HTMLElement) {
  return [...container.querySelectorAll('[data-testid="heatmap-cell"]')].map((g) => {
    const rect = g.querySelector('rect')!;
    return {
      rate: Number(g.getAttribute('data-rate')),
      age: Number(g.getAttribute('data-age')),
      maturing: g.getAttribute('data-maturing') === 'true',
      hatched: g.querySelector('rect.maturing') !== null,
      fill: rect.getAttribute('fill')!,
      x: Number(rect.getAttribute('x')),
      width: Number(rect.getAttribute('width')),
      text: g.textContent,
    };
  });
}

const luminance = (c: string) => {
  const { r, g, b } = rgb(c);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};

describe('cohort heatmap geometry', () => {
  it('draws one cell per recorded (cohort, age) point, the triangle, plus the average row', () => {
    const raw = influxRows('cohort-heatmap');
    const { container } = draw();
    const cells = cellRects(container);
    expect(cells).toHaveLength(raw.length);
    const cohorts = new Set(raw.map((r) => r.time)).size;
    // a triangle: the k-th cohort from the end has k cells
    expect(raw.length).toBe((cohorts * (cohorts + 1)) / 2);
    expect(container.querySelectorAll('[data-testid="average-cell"]')).toHaveLength(cohorts);
    expect(container.querySelectorAll('[data-testid="cohort-row-label"]')).toHaveLength(cohorts);
  });

  it('colours higher retention darker in light theme and lighter in dark theme', () => {
    for (const [theme, sign] of [
      [lightTheme, -1],
      [darkTheme, 1],
    ] as const) {
      const cells = cellRects(draw(recordedFrames('cohort-heatmap'), 900, 420, theme).container);
      let pairs = 0;
      for (const a of cells) {
        for (const b of cells) {
          if (b.rate > a.rate + 0.01) {
            // closer rates may round to the same rgb
            expect(Math.sign(luminance(b.fill) - luminance(a.fill))).toBe(sign);
            pairs++;
          }
        }
      }
      expect(pairs).toBeGreaterThan(100);
    }
  });

  it('paints 100 % retention in the chosen Grafana theme colour', () => {
    const frame = tableFrame('cohort_retention', 'A', {
      Time: [Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1)],
      age: ['0', '1'],
      rate: [1, 0.5],
      cohort_size: [4, 4],
      retained: [4, 2],
    });
    for (const color of ['blue', 'green']) {
      for (const theme of [lightTheme, darkTheme]) {
        const cells = cellRects(draw([frame], 600, 300, theme, { ...options, heatmapColor: color }).container);
        const full = cells.find((c) => c.rate === 1)!;
        expect(rgb(full.fill).formatHex()).toBe(rgb(theme.visualization.getColorByName(color)).formatHex());
      }
    }
  });

  it('marks maturing cells with the hatch and shows the value in each cell', () => {
    const cells = cellRects(draw().container);
    expect(cells.filter((c) => c.maturing).length).toBeGreaterThan(0);
    for (const c of cells) {
      expect(c.hatched).toBe(c.maturing);
      expect(c.text).toBe(`${(c.rate * 100).toFixed(1)}%`);
    }
  });

  it('shows each cohort size at the row start', () => {
    const raw = influxRows('cohort-heatmap').filter((r) => r.age === '0');
    const sizes = [...draw().container.querySelectorAll('[data-testid="cohort-size"]')].map((e) => e.textContent);
    expect(sizes).toEqual(raw.sort((a, b) => a.time - b.time).map((r) => r.cohort_size.toLocaleString('en-US')));
  });

  it('resizes with the panel: cells follow the panel width', () => {
    const narrow = cellRects(draw(recordedFrames('cohort-heatmap'), 600).container);
    const wide = cellRects(draw(recordedFrames('cohort-heatmap'), 1200).container);
    // grid width = panel width - 154 px of labels - 12 px margin, split over the ages
    const ages = Math.max(...narrow.map((c) => c.age)) + 1;
    expect(narrow[0].width).toBeCloseTo((600 - 166) / ages - 2, 6);
    expect(wide[0].width).toBeCloseTo((1200 - 166) / ages - 2, 6);
  });

  it("opens the data link of a clicked cell, for that cell's row", () => {
    const frames = recordedFrames('cohort-heatmap');
    const rate = frames[0].fields.find((f) => f.name === 'rate')!;
    rate.getLinks = jest.fn(({ valueRowIndex }) => [
      { href: `/d/cohort?row=${valueRowIndex}`, title: 'Cohort members', target: '_blank' as const, origin: rate },
    ]);
    const open = jest.spyOn(window, 'open').mockImplementation(() => null);
    const { container } = draw(frames);
    const raw = influxRows('cohort-heatmap');
    const target = raw.findIndex((r) => r.age === '2' && r.time === Date.UTC(2026, 1, 1));
    const cell = container.querySelector(
      `[data-testid="heatmap-cell"][data-age="2"][data-cohort="${Date.UTC(2026, 1, 1)}"]`
    )!;
    fireEvent.click(cell);
    // table frames keep InfluxDB's row order: the link gets that point's row
    expect(open).toHaveBeenCalledWith(`/d/cohort?row=${target}`, '_blank');
    open.mockRestore();
  });

  it('shows the cell in a tooltip on hover, saying when it is still maturing', () => {
    const { container, getByTestId } = draw();
    const cell = container.querySelector('[data-testid="heatmap-cell"][data-maturing="true"]')!;
    fireEvent.mouseMove(cell, { clientX: 50, clientY: 50 });
    expect(getByTestId('growth-tooltip').textContent).toMatch(
      /cohort · month \d.*Maturing: this month is not over yet/
    );
  });
});
