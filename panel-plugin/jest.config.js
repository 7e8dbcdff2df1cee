// force timezone to UTC to allow tests to work regardless of local timezone
// generally used by snapshots, but can affect specific tests
process.env.TZ = 'UTC';
// @grafana/ui's i18next prints an advert on first use otherwise
process.env.I18NEXT_NO_SUPPORT_NOTICE = '1';

const base = require('./.config/jest.config');
const { grafanaESModules, nodeModulesToTransform } = require('./.config/jest/utils');

// d3 v7 ships ES modules only: let swc transform d3-* and its ESM-only dependencies too.
const esModules = [...grafanaESModules, 'd3-[a-z-]+', 'internmap', 'delaunator', 'robust-predicates'];
const swc = base.transform['^.+\\.(t|j)sx?$'];

module.exports = {
  ...base,
  transform: {
    ...base.transform,
    '^.+\\.mjs$': swc,
  },
  transformIgnorePatterns: [nodeModulesToTransform(esModules)],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/harness/'],
};
