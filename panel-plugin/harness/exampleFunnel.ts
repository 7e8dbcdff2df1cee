/**
 * A longer, made-up funnel (the demo data's funnel has two steps), in exactly the table-frame
 * shape Grafana makes of the funnel_steps / funnel_branches queries. Only for the
 * harness's extra picture `funnel-example-*.png`; every test uses recorded frames.
 */
import { DataFrameJSON } from '@grafana/data';

const T = Date.UTC(2026, 0, 1);

function frame(name: string, refId: string, columns: Record<string, Array<string | number>>): DataFrameJSON {
  const names = Object.keys(columns);
  return {
    schema: {
      name,
      refId,
      fields: [
        { name: 'Time', type: 'time' as never },
        ...names.map((n) => ({ name: n, type: (typeof columns[n][0] === 'string' ? 'string' : 'number') as never })),
      ],
    },
    data: { values: [columns[names[0]].map(() => T), ...names.map((n) => columns[n])] },
  };
}

export const exampleFunnel: DataFrameJSON[] = [
  frame('funnel_steps', 'A', {
    step: ['1:signup', '2:activation', '3:trial_started', '4:subscription_started'],
    users: [12000, 6100, 2300, 900],
  }),
  frame('funnel_branches', 'B', {
    next: [
      '(none)',
      'trial_started',
      'payment',
      '(none)',
      'subscription_started',
      'payment_failed',
      '(none)',
      'subscription_cancelled',
      'payment_failed',
    ],
    step: [
      '1:signup',
      '1:signup',
      '1:signup',
      '2:activation',
      '2:activation',
      '2:activation',
      '3:trial_started',
      '3:trial_started',
      '3:trial_started',
    ],
    users: [4800, 900, 200, 3000, 500, 300, 1000, 250, 150],
  }),
];
