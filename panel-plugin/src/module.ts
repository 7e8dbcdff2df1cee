import { PanelPlugin } from '@grafana/data';

import { GrowthPanel } from './components/GrowthPanel';
import { DEFAULT_OPTIONS, GrowthOptions } from './types';

export const plugin = new PanelPlugin<GrowthOptions>(GrowthPanel).useFieldConfig().setPanelOptions((builder) =>
  builder
    .addRadio({
      path: 'visualisation',
      name: 'Visualisation',
      description: 'What to draw; each expects the frames of its query in panel-plugin/queries.json',
      defaultValue: DEFAULT_OPTIONS.visualisation,
      settings: {
        options: [
          { value: 'cohort-heatmap', label: 'Cohort heatmap' },
          { value: 'funnel', label: 'Funnel' },
          { value: 'waterfall', label: 'Revenue waterfall' },
        ],
      },
    })
    .addRadio({
      path: 'basis',
      name: 'Retention basis',
      category: ['Cohort heatmap'],
      description: 'Logo (users) or revenue (MRR) retention; auto: revenue when the frames carry MRR',
      defaultValue: DEFAULT_OPTIONS.basis,
      settings: {
        options: [
          { value: 'auto', label: 'Auto' },
          { value: 'logo', label: 'Logo' },
          { value: 'revenue', label: 'Revenue' },
        ],
      },
      showIf: (o) => o.visualisation === 'cohort-heatmap',
    })
    .addColorPicker({
      path: 'heatmapColor',
      name: 'Retention colour',
      category: ['Cohort heatmap'],
      description: 'Colour of 100 % retention; the scale runs from the panel background to it',
      defaultValue: DEFAULT_OPTIONS.heatmapColor,
      showIf: (o) => o.visualisation === 'cohort-heatmap',
    })
    .addBooleanSwitch({
      path: 'showCellValues',
      name: 'Show values in cells',
      category: ['Cohort heatmap'],
      defaultValue: DEFAULT_OPTIONS.showCellValues,
      showIf: (o) => o.visualisation === 'cohort-heatmap',
    })
    .addBooleanSwitch({
      path: 'showAverageRow',
      name: 'Weighted average row',
      category: ['Cohort heatmap'],
      defaultValue: DEFAULT_OPTIONS.showAverageRow,
      showIf: (o) => o.visualisation === 'cohort-heatmap',
    })
    .addBooleanSwitch({
      path: 'showBranches',
      name: 'Show branches',
      category: ['Funnel'],
      description: 'Draw where users went instead of the next step (needs the funnel_branches query)',
      defaultValue: DEFAULT_OPTIONS.showBranches,
      showIf: (o) => o.visualisation === 'funnel',
    })
    .addRadio({
      path: 'waterfallMode',
      name: 'Periods',
      category: ['Revenue waterfall'],
      description: 'One bridge over the whole time range, or one per month, chained',
      defaultValue: DEFAULT_OPTIONS.waterfallMode,
      settings: {
        options: [
          { value: 'range', label: 'Whole range' },
          { value: 'periods', label: 'Each month' },
        ],
      },
      showIf: (o) => o.visualisation === 'waterfall',
    })
    .addTextInput({
      path: 'currency',
      name: 'Currency',
      category: ['Revenue waterfall'],
      description: 'ISO code of the reporting currency the MRR fields are in',
      defaultValue: DEFAULT_OPTIONS.currency,
      showIf: (o) => o.visualisation !== 'funnel',
    })
);
