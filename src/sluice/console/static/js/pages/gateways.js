// Gateways: list, create, delete; one gateway's tabs (keys, logs, charts, settings).

import { del, get, post, put } from '../api.js';
import { confirmed, h, when } from '../dom.js';
import { apiForm } from '../forms.js';
import * as session from '../session.js';
import { chartsPage } from './charts.js';
import { keysPage } from './keys.js';
import { logsPage } from './logs.js';

const acct = () => `/accounts/${session.account()}`;
export const gatewayPath = (id) => `${acct()}/ai-gateway/gateways/${encodeURIComponent(id)}`;

const SETTINGS = [
  { name: 'authentication', label: 'Require a Sluice token on requests (authentication)', type: 'checkbox' },
  { name: 'collect_logs', label: 'Store request logs (collect_logs)', type: 'checkbox' },
  { name: 'cache_ttl', label: 'Cache TTL (seconds, 0 = off)', type: 'number', number: true, nullable: true },
  { name: 'rate_limiting_limit', label: 'Gateway rate limit (requests, 0 = off)', type: 'number', number: true,
    nullable: true },
  { name: 'rate_limiting_interval', label: 'Rate-limit window (seconds)', type: 'number', number: true,
    nullable: true },
  { name: 'rate_limiting_technique', label: 'Rate-limit technique', type: 'select',
    options: [['fixed', 'fixed'], ['sliding', 'sliding']] },
  { name: 'log_management', label: 'Most stored logs', type: 'number', number: true, nullable: true },
  { name: 'key_failover', label: 'Fail over to the next stored key when a provider refuses one (key_failover)',
    type: 'checkbox' },
];

export async function gatewaysPage(view) {
  document.title = 'Gateways · Sluice console';
  const { result } = await get(`${acct()}/ai-gateway/gateways`, { per_page: 100 });
  const table = h('table', { class: 'list', 'aria-label': 'Gateways' },
    h('thead', {}, h('tr', {}, ['Gateway', 'Authentication', 'Logs', 'Cache TTL', 'Rate limit', 'Created', '']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, result.map((gw) => h('tr', { 'data-gateway': gw.id },
      h('td', {}, h('a', { href: `#/gateways/${encodeURIComponent(gw.id)}/keys` }, gw.id)),
      h('td', {}, gw.authentication ? 'required' : 'off'),
      h('td', {}, gw.collect_logs ? 'on' : 'off'),
      h('td', {}, gw.cache_ttl ? `${gw.cache_ttl} s` : 'off'),
      h('td', {}, gw.rate_limiting_limit ? `${gw.rate_limiting_limit} / ${gw.rate_limiting_interval} s` : 'off'),
      h('td', {}, when(gw.created_at)),
      h('td', {}, session.can('gatewayWrite') ? h('button', {
        type: 'button', class: 'danger', 'aria-label': `Delete gateway ${gw.id}`,
        onclick: async () => {
          if (!confirmed(`Delete gateway ${gw.id} with its keys and logs?`)) return;
          await del(gatewayPath(gw.id));
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        },
      }, 'Delete') : null)))));
  view.append(h('h1', {}, 'Gateways'),
    result.length ? table : h('p', { class: 'empty' }, 'No gateways yet.'));
  if (session.can('gatewayWrite')) {
    const { form } = apiForm({
      title: 'Create a gateway', submitLabel: 'Create gateway', className: 'create-gateway',
      fields: [{ name: 'id', label: 'Gateway id', required: true, hint: 'lowercase letters, digits and _, words joined by single -' },
        { ...SETTINGS[0], value: true }, { ...SETTINGS[1], value: true }],
      submit: async (values) => {
        const { result: gw } = await post(`${acct()}/ai-gateway/gateways`, values);
        window.location.hash = `#/gateways/${encodeURIComponent(gw.id)}/keys`;
      },
    });
    view.append(form);
  }
}

const TABS = [['keys', 'Provider keys'], ['logs', 'Logs'], ['charts', 'Charts'], ['settings', 'Settings']];

export async function gatewayPage(view, id, tab, sub, params) {
  const base = `#/gateways/${encodeURIComponent(id)}`;
  view.append(h('p', { class: 'crumbs' }, h('a', { href: '#/gateways' }, 'Gateways'), ' / ', id),
    h('nav', { class: 'tabs', 'aria-label': 'Gateway' }, TABS.map(([name, label]) => h('a', {
      href: `${base}/${name}`, 'aria-current': name === tab ? 'page' : null,
    }, label))));
  const body = h('section', { class: 'tab' });
  view.append(body);
  document.title = `${id} · ${(TABS.find(([n]) => n === tab) || TABS[0])[1]} · Sluice console`;
  if (tab === 'logs') await logsPage(body, id, sub, params);
  else if (tab === 'charts') await chartsPage(body, id, params);
  else if (tab === 'settings') await settingsPage(body, id);
  else await keysPage(body, id);
}

async function settingsPage(body, id) {
  const { result: gw } = await get(gatewayPath(id));
  const writable = session.can('gatewayWrite');
  body.append(h('h2', {}, 'Settings'));
  if (!writable) {
    body.append(h('dl', { class: 'settings' }, SETTINGS.flatMap((f) => [h('dt', {}, f.label),
      h('dd', {}, String(gw[f.name]))])));
    return;
  }
  const saved = h('p', { class: 'notice', role: 'status', hidden: true }, 'Saved.');
  const { form } = apiForm({
    submitLabel: 'Save settings', className: 'gateway-settings',
    fields: SETTINGS.map((f) => ({ ...f, value: gw[f.name] })),
    submit: async (values) => {
      saved.hidden = true;
      await put(gatewayPath(id), values);
      saved.hidden = false;
    },
  });
  body.append(form, saved);
}
