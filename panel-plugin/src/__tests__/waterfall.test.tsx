import { fireEvent, render } from '@testing-library/react';
import React from 'react';

import { GrowthView } from '../components/GrowthView';
import { WATERFALL_MARGIN } from '../layout/waterfall';
import { influxRows, lightTheme, NOW, recordedFrames } from '../testing/fixtures';
import { DEFAULT_OPTIONS, GrowthOptions, WaterfallMode } from '../types';

function draw(mode: WaterfallMode, frames = recordedFrames('waterfall'), width = 960) {
  const options: GrowthOptions = { ...DEFAULT_OPTIONS, visualisation: 'waterfall', waterfallMode: mode };
  return render(
    <GrowthView
      frames={frames}
      options={options}
      width={width}
      height={440}
      theme={lightTheme}
      now={NOW}
      renderMessage={(m) => <p>{m}</p>}
    />
  );
}

interface Bar {
  kind: string;
  movement: string;
  from: number;
  to: number;
  top: number;
  bottom: number;
  el: Element;
}

function bars(container: HTMLElement): Bar[] {
  return [...container.querySelectorAll('[data-testid="waterfall-bar"]')].map((g) => {
    const r = g.querySelector('rect')!;
    const y = Number(r.getAttribute('y'));
    return {
      kind: g.getAttribute('data-kind')!,
      movement: g.getAttribute('data-movement')!,
      from: Number(g.getAttribute('data-from')),
      to: Number(g.getAttribute('data-to')),
      top: y,
      bottom: y + Number(r.getAttribute('height')),
      el: g,
    };
  });
}

const raw = influxRows('waterfall');
const SIGN: Record<string, number> = {
  new: 1,
  expansion: 1,
  reactivation: 1,
  contraction: -1,
  churn: -1,
  fx_impact: 1,
};

describe('revenue waterfall geometry', () => {
  it('whole range: starts on the first mrr_start, each bar starts where the previous ended, ends on the last mrr_end', () => {
    const bs = bars(draw('range').container);
    expect(bs.map((b) => b.movement)).toEqual([
      'start',
      'new',
      'expansion',
      'reactivation',
      'contraction',
      'churn',
      'fx_impact',
      'end',
    ]);
    expect(bs[0].to).toBeCloseTo(raw[0].mrr_start, 6);
    for (let i = 1; i < bs.length - 1; i++) {
      expect(bs[i].from).toBeCloseTo(bs[i - 1].to, 6);
      // pixels too: a rising bar's bottom (a falling bar's top) sits on the previous bar's end
      const prevEdge =
        bs[i - 1].kind === 'start' ? bs[i - 1].top : bs[i - 1].to >= bs[i - 1].from ? bs[i - 1].top : bs[i - 1].bottom;
      const edge = bs[i].to >= bs[i].from ? bs[i].bottom : bs[i].top;
      if (Math.abs(bs[i].to - bs[i].from) > 1) {
        expect(edge).toBeCloseTo(prevEdge, 6);
      }
    }
    const m = bs.length - 2;
    expect(bs[m].to).toBeCloseTo(raw[raw.length - 1].mrr_end, 4);
    expect(bs[m + 1].to).toBeCloseTo(raw[raw.length - 1].mrr_end, 4);
    // the movements are the sums of the months, signed (independently from the raw answer)
    for (const b of bs.slice(1, -1)) {
      const expected = raw.reduce((s, r) => s + SIGN[b.movement] * r[b.movement], 0);
      expect(b.to - b.from).toBeCloseTo(expected, 4);
    }
    // the end total is as tall as its value on the same axis as the start total
    expect(bs[m + 1].top).toBeLessThan(bs[0].top);
  });

  it('each month: months chained, every month ends on its recorded mrr_end', () => {
    const bs = bars(draw('periods').container);
    expect(bs).toHaveLength(1 + raw.length * 6 + (raw.length - 1) + 1);
    let i = 1;
    let running = bs[0].to;
    raw.forEach((r, k) => {
      expect(running).toBeCloseTo(r.mrr_start, 4);
      for (let j = 0; j < 6; j++, i++) {
        expect(bs[i].kind).toBe('movement');
        expect(bs[i].from).toBeCloseTo(running, 6);
        running = bs[i].to;
      }
      expect(running).toBeCloseTo(r.mrr_end, 4);
      expect(bs[i].kind).toBe('end');
      expect(bs[i].to).toBeCloseTo(r.mrr_end, 4);
      i++;
      if (k === raw.length - 1) {
        expect(i).toBe(bs.length);
      }
    });
  });

  it('closes a gap in the data with an explicit Unreconciled bar', () => {
    const frames = recordedFrames('waterfall');
    const frame = frames[0];
    const keep = [0, 1, 3, 4, 5]; // March is missing
    const cut = {
      ...frame,
      length: keep.length,
      fields: frame.fields.map((f) => ({ ...f, values: keep.map((k) => f.values[k]) })),
    };
    const bs = bars(draw('range', [cut]).container);
    const gap = bs.find((b) => b.kind === 'unreconciled')!;
    expect(gap).toBeDefined();
    expect(bs[bs.length - 2]).toBe(gap);
    expect(gap.to).toBeCloseTo(raw[5].mrr_end, 4);
    // the missing month's own movements are exactly what the gap holds
    const march = raw[2];
    const missing = Object.keys(SIGN).reduce((s, m) => s + SIGN[m] * march[m], 0);
    expect(gap.to - gap.from).toBeCloseTo(missing, 4);
  });

  it('opens the data link of the clicked movement', () => {
    const frames = recordedFrames('waterfall');
    const field = frames[0].fields.find((f) => f.name === 'churn')!;
    field.getLinks = jest.fn(({ valueRowIndex }) => [
      {
        href: `/d/mrr-movements?var-movement=churn&row=${valueRowIndex}`,
        title: 'Churned customers',
        target: '_self' as const,
        origin: field,
      },
    ]);
    const open = jest.spyOn(window, 'open').mockImplementation(() => null);
    const { container } = draw('range', frames);
    const churn = bars(container).find((b) => b.movement === 'churn')!;
    fireEvent.click(churn.el);
    expect(open).toHaveBeenCalledWith(`/d/mrr-movements?var-movement=churn&row=${raw.length - 1}`, '_self');
    open.mockClear();
    fireEvent.click(bars(container).find((b) => b.movement === 'new')!.el); // no links configured
    expect(open).not.toHaveBeenCalled();
    open.mockRestore();
  });

  it('shows a tooltip with the movement on hover', () => {
    const { container, getByTestId } = draw('range');
    fireEvent.mouseMove(bars(container).find((b) => b.movement === 'new')!.el, { clientX: 100, clientY: 100 });
    const tip = getByTestId('growth-tooltip');
    expect(tip.textContent).toContain('New');
    expect(tip.textContent).toContain('Change+$');
  });

  it('resizes with the panel: bars share the plot width in equal slots', () => {
    for (const width of [600, 1200]) {
      const bs = [
        ...draw('range', recordedFrames('waterfall'), width).container.querySelectorAll(
          '[data-testid="waterfall-bar"] rect'
        ),
      ];
      const plot = width - WATERFALL_MARGIN.left - WATERFALL_MARGIN.right;
      const slot = plot / bs.length;
      bs.forEach((r, i) => {
        const centre = Number(r.getAttribute('x')) + Number(r.getAttribute('width')) / 2;
        expect(centre).toBeCloseTo(WATERFALL_MARGIN.left + (i + 0.5) * slot, 6);
      });
    }
  });
});
