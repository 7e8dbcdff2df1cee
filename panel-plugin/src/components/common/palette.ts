import { GrafanaTheme2 } from '@grafana/data';
import { interpolateLab } from 'd3';

import { Movement } from '../../types';

/** Every colour the panel draws with, taken from the Grafana theme (light or dark). */
export interface Palette {
  text: string;
  textWeak: string;
  grid: string;
  border: string;
  background: string;
  surface: string;
  up: string;
  down: string;
  total: string;
  fx: string;
  primary: string;
  primaryFaded: string;
  dropoff: string;
  branch: string;
  fontFamily: string;
  fontSize: number;
  contrastText: (background: string) => string;
}

export function palette(theme: GrafanaTheme2): Palette {
  const viz = (name: string) => theme.visualization.getColorByName(name);
  return {
    text: theme.colors.text.primary,
    textWeak: theme.colors.text.secondary,
    grid: theme.colors.border.weak,
    border: theme.colors.border.medium,
    background: theme.colors.background.primary,
    surface: theme.colors.background.secondary,
    up: viz('green'),
    down: viz('red'),
    total: viz('blue'),
    fx: viz('purple'),
    primary: viz('blue'),
    primaryFaded: fade(viz('blue'), theme.isDark ? 0.3 : 0.22),
    dropoff: interpolateLab(theme.colors.background.primary, viz('red'))(theme.isDark ? 0.55 : 0.45),
    branch: viz('orange'),
    fontFamily: theme.typography.fontFamily,
    fontSize: 12,
    contrastText: (bg: string) => theme.colors.getContrastText(bg),
  };
}

/** A colour at the given opacity, as an rgba() string (works for hex and rgb inputs). */
export function fade(color: string, alpha: number): string {
  const c = parseColor(color);
  return c ? `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${alpha})` : color;
}

function parseColor(color: string): [number, number, number] | null {
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color.trim());
  if (hex) {
    const h = hex[1].length === 3 ? hex[1].replace(/./g, (d) => d + d) : hex[1];
    return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
  }
  const rgb = /^rgba?\((\d+),\s*(\d+),\s*(\d+)/i.exec(color.trim());
  return rgb ? [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])] : null;
}

export function movementColor(p: Palette, movement: Movement, value: number): string {
  if (movement === 'fx_impact') {
    return p.fx;
  }
  return value < 0 ? p.down : p.up;
}

/**
 * The retention colour scale: from a tint of the theme's panel background (at `min`) to the
 * chosen Grafana colour (at `max`: 100 %, or the highest revenue retention above it),
 * interpolated in Lab so equal steps of retention look like equal steps of colour.
 */
export function retentionScale(
  theme: GrafanaTheme2,
  colorName: string,
  min: number,
  max: number
): (rate: number) => string {
  const high = theme.visualization.getColorByName(colorName);
  const low = theme.isDark ? '#1f2430' : '#eef2f8';
  const interp = interpolateLab(low, high);
  const span = max - min;
  return (rate: number) => {
    const t = span > 0 ? Math.max(0, Math.min(1, (rate - min) / span)) : 1;
    return interp(t);
  };
}

/**
 * The scale's domain: up to 100 % (or the highest rate), down to the lowest rate rounded
 * down to 10 %, so a triangle that lives between 45 % and 98 % uses the whole colour range.
 */
export function retentionDomain(rates: number[]): [number, number] {
  const finite = rates.filter((r) => Number.isFinite(r));
  const max = Math.max(1, ...finite);
  const lowest = finite.length ? Math.min(...finite) : 0;
  const min = Math.max(0, Math.floor(lowest * 10) / 10);
  return [min >= max ? 0 : min, max];
}
