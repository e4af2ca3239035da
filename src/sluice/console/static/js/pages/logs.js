// Request logs of one gateway: filters (provider, model, status, cached, date range), paging, and one
// log's request and response.

import { call, get } from '../api.js';
import { badge, h, replace, when } from '../dom.js';
import { gatewayPath } from './gateways.js';

const PER_PAGE = 20;
const FILTERS = ['provider', 'model', 'success', 'cached', 'start_date', 'end_date', 'page'];

function pretty(text) {
  if (text === null || text === undefined) return '(not stored)';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function localToIso(value) {
  return value ? new Date(value).toISOString() : '';
}

function isoToLocal(value) {
  if (!value) return '';
  const date = new Date(value);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:`
    + `${pad(date.getMinutes())}`;
}

function filterForm(gateway, params) {
  const field = (name, label, control) => h('div', { class: 'field' }, h('label', { for: `log-${name}` }, label),
    control);
  const select = (name, options) => {
    const el = h('select', { id: `log-${name}`, name }, options.map(([v, t]) => h('option', { value: v }, t)));
    el.value = params.get(name) || '';
    return el;
  };
  const form = h('form', { class: 'filters', 'aria-label': 'Log filters' },
    field('provider', 'Provider', h('input', { id: 'log-provider', name: 'provider', value: params.get('provider') })),
    field('model', 'Model', h('input', { id: 'log-model', name: 'model', value: params.get('model') })),
    field('success', 'Status', select('success', [['', 'any'], ['true', 'success'], ['false', 'error']])),
    field('cached', 'Cached', select('cached', [['', 'any'], ['true', 'cached'], ['false', 'not cached']])),
    field('start_date', 'From', h('input', { id: 'log-start_date', name: 'start_date', type: 'datetime-local',
      value: isoToLocal(params.get('start_date')) })),
    field('end_date', 'To', h('input', { id: 'log-end_date', name: 'end_date', type: 'datetime-local',
      value: isoToLocal(params.get('end_date')) })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply filters')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [name, value] of new FormData(form).entries()) {
      const text = name.endsWith('_date') ? localToIso(value) : String(value).trim();
      if (text) next.set(name, text);
    }
    window.location.hash = `#/gateways/${encodeURIComponent(gateway)}/logs?${next}`;
  });
  return form;
}

export async function logsPage(body, gateway, logId, params) {
  if (logId) return logPage(body, gateway, logId);
  const query = { per_page: PER_PAGE };
  for (const name of FILTERS) if (params.get(name)) query[name] = params.get(name);
  const form = filterForm(gateway, params);
  const errorBox = h('p', { class: 'form-error', role: 'alert', hidden: true });
  body.append(h('h2', {}, 'Logs'), form, errorBox);
  let data;
  try {
    data = await get(`${gatewayPath(gateway)}/logs`, query);
  } catch (error) {
    errorBox.hidden = false;
    replace(errorBox, error.message); // a 400 names the filter at fault
    return;
  }
  const { result, result_info: info } = data;
  const base = `#/gateways/${encodeURIComponent(gateway)}/logs`;
  body.append(result.length ? h('table', { class: 'list logs', 'aria-label': 'Request logs' },
    h('thead', {}, h('tr', {}, ['Time', 'Provider', 'Model', 'Key', 'Status', 'Tokens in/out', 'Cost', 'Duration']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, result.map((log) => h('tr', { 'data-log': log.id },
      h('td', {}, h('a', { href: `${base}/${log.id}`, 'aria-label': `Open log ${log.id}` }, when(log.created_at))),
      h('td', {}, log.provider), h('td', {}, log.model || '—'), h('td', {}, log.alias || '—'),
      h('td', {}, String(log.status_code ?? '—'), ' ', log.success ? badge('ok', 'ok') : badge('error', 'error'),
        log.cached ? [' ', badge('cached', 'cached')] : null),
      h('td', { class: 'num' }, `${log.tokens_in ?? 0} / ${log.tokens_out ?? 0}`),
      h('td', { class: 'num' }, log.cost ? `$${log.cost.toFixed(6)}` : '—'),
      h('td', { class: 'num' }, `${log.duration} ms`)))))
    : h('p', { class: 'empty' }, 'No logs match.'));
  const page = info.page;
  const pageLink = (n, label) => {
    const next = new URLSearchParams(params);
    next.set('page', String(n));
    return h('a', { href: `${base}?${next}`, class: 'button secondary' }, label);
  };
  body.append(h('nav', { class: 'pager', 'aria-label': 'Pages' },
    page > 1 ? pageLink(page - 1, 'Previous') : null,
    h('span', {}, `Page ${page} of ${Math.max(info.total_pages, 1)} · ${info.total_count} logs`),
    page < info.total_pages ? pageLink(page + 1, 'Next') : null));
}

async function logPage(body, gateway, logId) {
  const path = `${gatewayPath(gateway)}/logs/${encodeURIComponent(logId)}`;
  const { result: log } = await get(path);
  const section = (title, head, complete, which) => {
    const pre = h('pre', { class: `body ${which}`, tabindex: '0' }, pretty(head));
    const more = complete || head === null ? null : h('button', {
      type: 'button', class: 'secondary',
      onclick: async (event) => {
        replace(pre, pretty(await call('GET', `${path}/${which}`, { raw: true })));
        event.target.remove();
      },
    }, 'Load the whole body');
    return h('section', { class: 'log-body', 'aria-label': title }, h('h3', {}, title), pre, more);
  };
  body.append(
    h('p', {}, h('a', { href: `#/gateways/${encodeURIComponent(gateway)}/logs` }, '← All logs')),
    h('h2', {}, `Log ${log.id}`),
    h('dl', { class: 'log-meta' }, [
      ['Time', when(log.created_at)], ['Provider', log.provider], ['Model', log.model || '—'],
      ['Key', log.alias || '—'], ['Path', log.path], ['Status', String(log.status_code ?? '—')],
      ['Success', String(log.success)], ['Cached', String(log.cached)], ['Stream', String(log.stream)],
      ['Tokens', `${log.tokens_in ?? 0} in / ${log.tokens_out ?? 0} out`],
      ['Cost', log.cost ? `$${log.cost.toFixed(6)}` : '—'], ['Duration', `${log.duration} ms`],
    ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    section('Request', log.request_head, log.request_head_complete, 'request'),
    section('Response', log.response_head, log.response_head_complete, 'response'));
}
