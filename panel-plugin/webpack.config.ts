/*
 * Extends the scaffold's webpack config (.config/webpack/webpack.config.ts, which
 * create-plugin owns) the documented way: the scaffold copies every `src/**\/*.json` into
 * dist/, which would ship the recorded test fixtures inside the plugin. Keep them out.
 */
import CopyWebpackPlugin from 'copy-webpack-plugin';
import type { Configuration } from 'webpack';

import grafanaConfig from './.config/webpack/webpack.config';

type Pattern = string | { from: string; globOptions?: { ignore?: string[] } };

const config = async (env: Record<string, unknown>): Promise<Configuration> => {
  const base = await grafanaConfig(env as never);
  for (const plugin of base.plugins ?? []) {
    if (plugin instanceof CopyWebpackPlugin) {
      const copy = plugin as unknown as { patterns: Pattern[] };
      copy.patterns = copy.patterns.map((p) =>
        typeof p !== 'string' && p.from === '**/*.json'
          ? { ...p, globOptions: { ...p.globOptions, ignore: [...(p.globOptions?.ignore ?? []), '**/__fixtures__/**'] } }
          : p
      );
    }
  }
  return base;
};

export default config;
