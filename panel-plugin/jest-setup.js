// Jest setup provided by Grafana scaffolding; DOM-only, so node-environment tests (the
// headless Chromium screenshot test) skip it.
if (typeof window !== 'undefined') {
  require('./.config/jest-setup');
}
