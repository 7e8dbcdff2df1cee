import { LinkModel } from '@grafana/data';

import { LinkSource } from '../types';

/** The data links (drill-downs) Grafana configured for the field a drawn value came from. */
export function linksFor(source: LinkSource | undefined): LinkModel[] {
  if (!source?.field.getLinks) {
    return [];
  }
  return source.field.getLinks({ valueRowIndex: source.rowIndex });
}

/** Follow a value's first data link, as Grafana's own panels do on a one-click link. */
export function followLink(source: LinkSource | undefined, event?: React.MouseEvent): boolean {
  const [link] = linksFor(source);
  if (!link) {
    return false;
  }
  if (link.onClick) {
    link.onClick(event, { origin: link.origin });
  } else {
    window.open(link.href, link.target ?? '_self');
  }
  return true;
}
