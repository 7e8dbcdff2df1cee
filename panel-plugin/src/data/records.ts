import { DataFrame, Field, FieldType } from '@grafana/data';

import { LinkSource } from '../types';

/**
 * One measured point of an InfluxDB series, whatever result format Grafana used: its time,
 * its tags and its field values (plus where each value lives, for data links).
 *
 * Grafana's InfluxQL parser gives, for `resultFormat: table`, one frame per query with a
 * `Time` field, one string field per GROUP BY tag and one number field per column; for
 * `time_series`, one frame per (series, column) with `Time` and `Value`, the tags as the
 * value field's labels and `measurement.column { tag: value }` as the frame name. Both come
 * out here as the same records, so each parser is written once against the schema.
 */
export interface SeriesRecord {
  time: number | null;
  tags: Record<string, string>;
  values: Record<string, number | null>;
  links: Record<string, LinkSource>;
}

const SERIES_NAME = /^[^.{\s]+\.([^\s{]+)/;

/** The InfluxDB column a time-series frame's value field carries, or null when aliased away. */
export function seriesColumn(frame: DataFrame, field: Field): string | null {
  if (field.name !== 'Value') {
    return field.name;
  }
  const name = frame.name ?? field.config?.displayNameFromDS ?? '';
  const m = SERIES_NAME.exec(name);
  return m ? m[1] : null;
}

function timeField(frame: DataFrame): Field | undefined {
  return frame.fields.find((f) => f.type === FieldType.time);
}

function numeric(value: unknown): number | null {
  if (value === null || value === undefined || value === '') {
    return null;
  }
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

function key(time: number | null, tags: Record<string, string>): string {
  return JSON.stringify([
    time,
    Object.keys(tags)
      .sort()
      .map((k) => [k, tags[k]]),
  ]);
}

/**
 * All frames as records, one per (time, tag set): values of the same point that Grafana
 * split over several time-series frames are merged back together.
 */
export function toRecords(frames: DataFrame[]): SeriesRecord[] {
  const byKey = new Map<string, SeriesRecord>();
  const order: string[] = [];
  const put = (time: number | null, tags: Record<string, string>, column: string, value: unknown, link: LinkSource) => {
    const k = key(time, tags);
    let rec = byKey.get(k);
    if (!rec) {
      rec = { time, tags: { ...tags }, values: {}, links: {} };
      byKey.set(k, rec);
      order.push(k);
    }
    rec.values[column] = numeric(value);
    rec.links[column] = link;
  };
  for (const frame of frames) {
    const tf = timeField(frame);
    const tagFields = frame.fields.filter((f) => f.type === FieldType.string);
    const valueFields = frame.fields.filter((f) => f.type === FieldType.number);
    for (const field of valueFields) {
      const column = seriesColumn(frame, field);
      if (column === null) {
        continue;
      }
      for (let row = 0; row < frame.length; row++) {
        const tags: Record<string, string> = { ...(field.labels ?? {}) };
        for (const tf2 of tagFields) {
          const v = tf2.values[row];
          if (v !== null && v !== undefined) {
            tags[tf2.name] = String(v);
          }
        }
        const time = tf ? numeric(tf.values[row]) : null;
        put(time, tags, column, field.values[row], { field, rowIndex: row });
      }
    }
  }
  return order.map((k) => byKey.get(k)!);
}

/** `cohort_retention(Time, age, rate)`-style summary of what arrived, for error messages. */
export function describeFrames(frames: DataFrame[]): string {
  if (frames.length === 0) {
    return 'no frames';
  }
  const shown = frames.slice(0, 3).map((f) => {
    const fields = f.fields.map((fl) => (fl.name === 'Value' ? (seriesColumn(f, fl) ?? 'Value') : fl.name));
    return `${f.name ?? f.refId ?? 'frame'}(${fields.join(', ')})`;
  });
  return shown.join('; ') + (frames.length > 3 ? ` and ${frames.length - 3} more` : '');
}

/** True when the query returned nothing at all (no frames or only empty ones). */
export function isEmpty(frames: DataFrame[]): boolean {
  return frames.every((f) => f.length === 0);
}
