import { render } from '@testing-library/react';
import React from 'react';

import { GrowthView } from '../components/GrowthView';
import { FUNNEL_MARGIN } from '../layout/funnel';
import { influxRows, lightTheme, NOW, recordedFrames, tableFrame } from '../testing/fixtures';
import { DEFAULT_OPTIONS, GrowthOptions } from '../types';

const options: GrowthOptions = { ...DEFAULT_OPTIONS, visualisation: 'funnel' };

function draw(frames = recordedFrames('funnel'), width = 900, opts = options) {
  return render(
    <GrowthView
      frames={frames}
      options={opts}
      width={width}
      height={440}
      theme={lightTheme}
      now={NOW}
      renderMessage={(m) => <p>{m}</p>}
    />
  );
}

const num = (e: Element, a: string) => Number(e.getAttribute(a));

/** visit 1000 -> signup 400 -> activation 200 -> paid 50, with branches, as table frames. */
function fourSteps() {
  const t = Date.UTC(2026, 0, 1);
  const steps = tableFrame('funnel_steps', 'A', {
    Time: [t, t, t, t],
    step: ['1:visit', '2:signup', '3:activation', '4:paid'],
    users: [1000, 400, 200, 50],
  });
  const branches = tableFrame('funnel_branches', 'B', {
    Time: [t, t, t, t, t, t],
    next: ['(none)', 'payment', '(none)', 'refund', '(none)', 'trial_started'],
    step: ['1:visit', '1:visit', '2:signup', '2:signup', '3:activation', '3:activation'],
    users: [450, 150, 200, 0, 100, 50],
  });
  return [steps, branches];
}

describe('funnel geometry', () => {
  it('draws bars whose widths are proportional to the recorded users', () => {
    const steps = influxRows('funnel', 'A').sort((a, b) => parseInt(a.step, 10) - parseInt(b.step, 10));
    const bars = [...draw().container.querySelectorAll('[data-testid="funnel-bar"]')];
    expect(bars).toHaveLength(steps.length);
    const w0 = num(bars[0], 'width');
    bars.forEach((b, i) => expect(num(b, 'width') / w0).toBeCloseTo(steps[i].users / steps[0].users, 9));
  });

  it('labels step conversion and drop-off between the bars', () => {
    const { container } = draw(fourSteps());
    const conv = [...container.querySelectorAll('[data-testid="funnel-conversion"]')].map((e) => e.textContent);
    expect(conv).toEqual(['↓ 40.0% converted', '↓ 50.0% converted', '↓ 25.0% converted']);
    const drop = [...container.querySelectorAll('[data-testid="funnel-dropoff-label"]')].map((e) => e.textContent);
    expect(drop).toEqual(['600 dropped off (60.0%)', '200 dropped off (50.0%)', '150 dropped off (75.0%)']);
    const steps = [...container.querySelectorAll('[data-testid="funnel-step"]')].map((e) => e.textContent);
    expect(steps[3]).toContain('5.0% of step 1');
  });

  it('draws each non-empty branch as wide as its users, filling the step drop-off', () => {
    const { container } = draw(fourSteps());
    const bars = [...container.querySelectorAll('[data-testid="funnel-bar"]')];
    const perUser = num(bars[0], 'width') / 1000;
    const branches = [...container.querySelectorAll('[data-testid="funnel-branch"]')];
    expect(branches.map((b) => b.getAttribute('data-next'))).toEqual([
      '(none)',
      'payment',
      '(none)',
      '(none)',
      'trial_started',
    ]);
    const widths = branches.map((b) => num(b.querySelector('rect')!, 'width') / perUser);
    [450, 150, 200, 100, 50].forEach((u, i) => expect(widths[i]).toBeCloseTo(u, 6));
    const drops = [...container.querySelectorAll('[data-testid="funnel-dropoff"]')].map(
      (d) => num(d, 'width') / perUser
    );
    [600, 200, 150].forEach((u, i) => expect(drops[i]).toBeCloseTo(u, 6));
    // the drop-off segment of bar k starts where bar k+1 ends
    expect(num(container.querySelectorAll('[data-testid="funnel-dropoff"]')[0], 'x')).toBeCloseTo(
      FUNNEL_MARGIN.label + 400 * perUser,
      6
    );
  });

  it('draws the recorded branch (where signups went instead of activating)', () => {
    const branches = influxRows('funnel', 'B').filter((r) => r.users > 0);
    const drawn = [...draw().container.querySelectorAll('[data-testid="funnel-branch"]')];
    expect(drawn.map((b) => b.getAttribute('data-next'))).toEqual(branches.map((r) => r.next));
    expect(drawn[0].textContent).toContain(branches[0].users.toLocaleString('en-US'));
  });

  it('hides branches when the option is off, and fits any width', () => {
    const { container } = draw(fourSteps(), 500, { ...options, showBranches: false });
    expect(container.querySelectorAll('[data-testid="funnel-branch"]')).toHaveLength(0);
    const bars = [...container.querySelectorAll('[data-testid="funnel-bar"]')];
    expect(num(bars[0], 'x') + num(bars[0], 'width')).toBeCloseTo(500 - FUNNEL_MARGIN.right, 6);
  });
});
