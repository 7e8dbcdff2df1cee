/** Number formats shared by the three visualisations (locale-independent: en-US). */

const count = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatCount(v: number): string {
  return count.format(v);
}

export function formatPercent(v: number | null, digits = 1): string {
  return v === null || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(digits)}%`;
}

const compactCache = new Map<string, Intl.NumberFormat>();

function compact(currency: string): Intl.NumberFormat {
  let f = compactCache.get(currency);
  if (!f) {
    try {
      f = new Intl.NumberFormat('en-US', {
        style: 'currency',
        currency,
        notation: 'compact',
        maximumFractionDigits: 1,
      });
    } catch {
      f = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
    }
    compactCache.set(currency, f);
  }
  return f;
}

/** `$354.6K`: MRR amounts in the reporting currency. */
export function formatMoney(v: number, currency: string): string {
  return compact(currency).format(v);
}

/** `+$35.4K` / `−$18.1K`: a movement's signed effect. */
export function formatSignedMoney(v: number, currency: string): string {
  const body = formatMoney(Math.abs(v), currency);
  return v < 0 ? `−${body}` : `+${body}`;
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Jan 2026` for a UTC month start. */
export function formatMonth(ms: number): string {
  const d = new Date(ms);
  return `${months[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

/** `Jan` for a UTC month start. */
export function formatShortMonth(ms: number): string {
  return months[new Date(ms).getUTCMonth()];
}
