import React, { useCallback, useRef, useState } from 'react';

import { Palette } from './palette';

export interface TooltipState {
  x: number;
  y: number;
  title: string;
  rows: Array<[string, string]>;
  hint?: string;
}

/**
 * Tooltip state for one chart: `show` places it next to the pointer, relative to the
 * chart's container (the element `containerRef` points at).
 */
export function useTooltip() {
  const containerRef = useRef<HTMLDivElement>(null);
  const [tooltip, setTooltip] = useState<TooltipState | null>(null);
  const show = useCallback((event: React.MouseEvent, content: Omit<TooltipState, 'x' | 'y'>) => {
    const rect = containerRef.current?.getBoundingClientRect();
    setTooltip({ x: event.clientX - (rect?.left ?? 0), y: event.clientY - (rect?.top ?? 0), ...content });
  }, []);
  const hide = useCallback(() => setTooltip(null), []);
  return { containerRef, tooltip, show, hide };
}

interface Props {
  tooltip: TooltipState | null;
  palette: Palette;
  width: number;
  height: number;
}

/** The hover card shared by the three visualisations, styled like Grafana's own tooltips. */
export function Tooltip({ tooltip, palette, width, height }: Props) {
  if (!tooltip) {
    return null;
  }
  const flipX = tooltip.x > width * 0.6;
  const flipY = tooltip.y > height * 0.6;
  const style: React.CSSProperties = {
    position: 'absolute',
    left: flipX ? undefined : tooltip.x + 14,
    right: flipX ? width - tooltip.x + 14 : undefined,
    top: flipY ? undefined : tooltip.y + 14,
    bottom: flipY ? height - tooltip.y + 14 : undefined,
    pointerEvents: 'none',
    background: palette.surface,
    color: palette.text,
    border: `1px solid ${palette.border}`,
    borderRadius: 4,
    boxShadow: '0 4px 12px rgba(0,0,0,0.25)',
    padding: '6px 10px',
    fontFamily: palette.fontFamily,
    fontSize: palette.fontSize,
    lineHeight: 1.5,
    whiteSpace: 'nowrap',
    zIndex: 10,
  };
  return (
    <div role="tooltip" data-testid="growth-tooltip" style={style}>
      <div style={{ fontWeight: 500, marginBottom: 2 }}>{tooltip.title}</div>
      {tooltip.rows.map(([k, v]) => (
        <div key={k} style={{ display: 'flex', justifyContent: 'space-between', gap: 16 }}>
          <span style={{ color: palette.textWeak }}>{k}</span>
          <span style={{ fontVariantNumeric: 'tabular-nums' }}>{v}</span>
        </div>
      ))}
      {tooltip.hint && <div style={{ color: palette.textWeak, marginTop: 2, fontStyle: 'italic' }}>{tooltip.hint}</div>}
    </div>
  );
}
