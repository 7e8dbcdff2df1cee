import { CohortModel } from '../types';

export interface HeatmapCellBox {
  row: number;
  age: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface HeatmapLayout {
  /** Left edge of the cohort-month labels and of the cohort-size column. */
  labelX: number;
  sizeX: number;
  gridX: number;
  gridY: number;
  cellW: number;
  cellH: number;
  rowY: number[]; // top of each cohort row
  averageY: number | null; // top of the weighted average row
  cells: HeatmapCellBox[];
  legendY: number;
  width: number;
  height: number;
}

export const HEATMAP_MARGIN = { top: 34, right: 12, bottom: 44, label: 84, size: 70, gap: 8 };

/**
 * Where every cell goes: cohorts top to bottom, ages left to right, a column of cohort
 * sizes at the row start, the weighted average row under a small gap. Cells shrink to fit
 * the panel (resize) but never grow taller than 44 px, so a short triangle stays compact.
 */
export function heatmapLayout(model: CohortModel, width: number, height: number, showAverage: boolean): HeatmapLayout {
  const m = HEATMAP_MARGIN;
  const nRows = model.rows.length + (showAverage ? 1 : 0);
  const nCols = Math.max(1, model.ages.length);
  const gridX = m.label + m.size;
  const gridW = Math.max(10, width - gridX - m.right);
  const avail = Math.max(10, height - m.top - m.bottom - (showAverage ? m.gap : 0));
  const cellW = gridW / nCols;
  const cellH = Math.min(44, avail / Math.max(1, nRows));
  const rowY = model.rows.map((_, i) => m.top + i * cellH);
  const averageY = showAverage ? m.top + model.rows.length * cellH + m.gap : null;
  const cells: HeatmapCellBox[] = [];
  model.rows.forEach((row, i) => {
    for (const cell of row.cells) {
      const col = model.ages.indexOf(cell.age);
      cells.push({ row: i, age: cell.age, x: gridX + col * cellW, y: rowY[i], w: cellW, h: cellH });
    }
  });
  const bottom = (averageY ?? m.top + model.rows.length * cellH - cellH) + cellH;
  return {
    labelX: 0,
    sizeX: m.label,
    gridX,
    gridY: m.top,
    cellW,
    cellH,
    rowY,
    averageY,
    cells,
    legendY: Math.min(height - 28, bottom + 14),
    width,
    height,
  };
}
