// Requests, errors, tokens and cost over time for a gateway or one key (the timeseries extension),
// drawn with the vendored uPlot (loaded by index.html as a classic script: window.uPlot).

import { get } from '../api.js';
import { h } from '../dom.js';
import { gatewayPath } from './gateways.js';

const RANGES = [['1h', 'Last hour', 3600], ['24h', 'Last 24 hours', 86400], ['7d', 'Last 7 days', 7 * 86400],
  ['30d', 'Last 30 days', 30 * 86400]];
const SERIES = [['requests', 'Requests', '#2563eb'], ['errors', 'Errors', '#dc2626'],
  ['tokens', 'Tokens', '#7c3aed'], ['cost', 'Cost (USD)', '#059669']];

function go(gateway, params) {
  window.location.hash = `#/gateways/${encodeURIComponent(gateway)}/charts?${params}`;
}

export async function chartsPage(body, gateway, params) {
  const range = RANGES.find(([name]) => name === params.get('range')) || RANGES[1];
  const end = new Date();
  const start = new Date(end.getTime() - range[2] * 1000);
  const key = params.get('alias') ? { provider: params.get('provider'), alias: params.get('alias') } : null;
  const [series, configs] = await Promise.all([
    get(`${gatewayPath(gateway)}/timeseries`, { start: start.toISOString(), end: end.toISOString(), ...key }),
    get(`${gatewayPath(gateway)}/provider_configs`, { per_page: 100 }),
  ]);

  const rangeSelect = h('select', { id: 'chart-range' }, RANGES.map(([v, t]) => h('option', { value: v }, t)));
  rangeSelect.value = range[0];
  rangeSelect.addEventListener('change', () => {
    const next = new URLSearchParams(params);
    next.set('range', rangeSelect.value);
    go(gateway, next);
  });
  const keySelect = h('select', { id: 'chart-key' }, h('option', { value: '' }, 'All keys'),
    configs.result.map((c) => h('option', { value: `${c.provider_slug}\n${c.alias}` }, `${c.provider_slug} / ${c.alias}`)));
  keySelect.value = key ? `${key.provider}\n${key.alias}` : '';
  keySelect.addEventListener('change', () => {
    const next = new URLSearchParams({ range: range[0] });
    if (keySelect.value) {
      const [provider, alias] = keySelect.value.split('\n');
      next.set('provider', provider);
      next.set('alias', alias);
    }
    go(gateway, next);
  });
  body.append(h('h2', {}, 'Charts', key ? ` · ${key.provider} / ${key.alias}` : ''),
    h('div', { class: 'chart-controls' },
      h('label', { for: 'chart-range' }, 'Range'), rangeSelect,
      h('label', { for: 'chart-key' }, 'Key'), keySelect));

  const { points, interval } = series.result;
  const xs = points.map((p) => Date.parse(p.t) / 1000);
  const grid = h('div', { class: 'charts' });
  body.append(grid);
  const holders = SERIES.map(([name, label]) => {
    const total = points.reduce((sum, p) => sum + p[name], 0);
    const shown = name === 'cost' ? `$${total.toFixed(6)}` : String(total);
    const holder = h('div', { class: 'chart-canvas', role: 'img',
      'aria-label': `${label} per ${interval} over ${range[1].toLowerCase()}: ${shown} in total` });
    grid.append(h('figure', { class: 'chart', 'data-series': name },
      h('figcaption', {}, label, ' ', h('span', { class: 'total', 'data-total': String(total) }, shown),
        h('small', {}, ` in total, per ${interval}`)),
      holder));
    return holder;
  });
  if (!window.uPlot) return; // the numbers above still tell
  // Drawn once every figure is laid out, so each chart takes its own column's width.
  SERIES.forEach(([name, label, color], i) => {
    // eslint-disable-next-line no-new
    new window.uPlot({
      width: Math.max(280, holders[i].clientWidth - 4), height: 180, legend: { show: false },
      series: [{}, { label, stroke: color, fill: `${color}22`, width: 1.5 }],
      axes: [{}, name === 'cost'
        ? { size: 80, values: (u, ticks) => ticks.map((v) => `$${Number(v.toPrecision(3))}`) }
        : { size: 60 }],
      scales: { x: { time: true } },
    }, [xs, points.map((p) => p[name])], holders[i]);
  });
}
