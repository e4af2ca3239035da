// Provider keys of one gateway, grouped by provider. One request loads the page: the provider-config
// list carries preview, default, limits and activity (last used, counts, stale).

import { del, get, post, put } from '../api.js';
import { badge, confirmed, h, when } from '../dom.js';
import { apiForm, dialogForm } from '../forms.js';
import * as session from '../session.js';
import { gatewayPath } from './gateways.js';

const PROVIDERS = ['openai', 'anthropic', 'google-ai-studio', 'google-vertex-ai', 'azure-openai', 'workers-ai',
  'groq', 'mistral', 'cohere', 'perplexity-ai', 'deepseek', 'cerebras', 'grok', 'openrouter', 'huggingface',
  'replicate', 'cartesia', 'elevenlabs', 'aws-bedrock'];

const limitFields = (key) => [
  { name: 'rate_limit', label: 'Rate limit (requests per period, 0 = unlimited)', type: 'number', number: true,
    value: key ? key.rate_limit : '' },
  { name: 'rate_limit_period', label: 'Period (seconds)', type: 'number', number: true,
    value: key ? key.rate_limit_period : 60 },
];

function refresh() {
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

function limitText(key) {
  return key.rate_limit ? `${key.rate_limit} / ${key.rate_limit_period} s` : 'unlimited';
}

function actions(gateway, key) {
  if (!session.can('keysWrite')) return null;
  const path = `${gatewayPath(gateway)}/provider_configs/${key.id}`;
  const name = `${key.provider_slug} ${key.alias}`;
  return h('div', { class: 'row-actions' },
    key.default_config ? null : h('button', {
      type: 'button', class: 'secondary', 'aria-label': `Make ${name} the default`,
      onclick: async () => { await put(path, { default_config: true }); refresh(); },
    }, 'Make default'),
    h('button', {
      type: 'button', class: 'secondary', 'aria-label': `Rotate ${name}`,
      onclick: () => dialogForm({
        title: `Rotate ${name}`, submitLabel: 'Rotate key',
        fields: [{ name: 'secret', label: 'New key', type: 'password', required: true, writeOnly: true }],
        submit: async (values) => { await put(path, values); refresh(); },
      }),
    }, 'Rotate'),
    h('button', {
      type: 'button', class: 'secondary', 'aria-label': `Change the limit of ${name}`,
      onclick: () => dialogForm({
        title: `Rate limit of ${name}`, submitLabel: 'Save limit', fields: limitFields(key),
        submit: async (values) => { await put(path, values); refresh(); },
      }),
    }, 'Limit'),
    h('button', {
      type: 'button', class: 'danger', 'aria-label': `Delete ${name}`,
      onclick: async () => {
        if (!confirmed(`Delete the key ${name}? Requests relying on it will fail.`)) return;
        await del(path);
        refresh();
      },
    }, 'Delete'));
}

// Key pools (docs/gateway.md "Key pools"): a key the provider refused is cooling down or failed.
function keyState(key) {
  if (!key.key_state || key.key_state === 'ok') return null;
  const until = key.key_state_until ? ` until ${new Date(key.key_state_until).toLocaleTimeString()}` : '';
  const reason = key.key_state_reason ? ` (${key.key_state_reason})` : '';
  return [' ', badge(`${key.key_state}${until}`, 'stale key-state'), h('span', { class: 'hint' }, reason)];
}

function keyRow(gateway, key) {
  const chart = `#/gateways/${encodeURIComponent(gateway)}/charts?provider=${encodeURIComponent(key.provider_slug)}`
    + `&alias=${encodeURIComponent(key.alias)}`;
  return h('tr', { 'data-alias': key.alias, 'data-provider': key.provider_slug },
    h('th', { scope: 'row' }, key.alias, key.default_config ? [' ', badge('default', 'default')] : null,
      key.stale ? [' ', badge('stale', 'stale')] : null, keyState(key)),
    h('td', {}, h('code', { class: 'preview' }, key.secret_preview)),
    h('td', { class: 'limit' }, limitText(key)),
    h('td', {}, when(key.created_at)),
    h('td', { class: 'last-used' }, when(key.last_used_at)),
    h('td', { class: 'requests num' }, String(key.request_count ?? 0)),
    h('td', { class: 'errors num' }, String(key.error_count ?? 0)),
    h('td', {}, h('a', { href: chart, 'aria-label': `Chart of ${key.provider_slug} ${key.alias}` }, 'Chart')),
    h('td', {}, actions(gateway, key)));
}

export async function keysPage(body, gateway) {
  const { result } = await get(`${gatewayPath(gateway)}/provider_configs`, { per_page: 100 });
  const byProvider = new Map();
  for (const key of result) {
    if (!byProvider.has(key.provider_slug)) byProvider.set(key.provider_slug, []);
    byProvider.get(key.provider_slug).push(key);
  }
  body.append(h('h2', {}, 'Provider keys'));
  if (!result.length) body.append(h('p', { class: 'empty' }, 'No provider keys stored on this gateway.'));
  for (const [provider, keys] of [...byProvider.entries()].sort()) {
    body.append(h('section', { class: 'provider', 'data-provider': provider, 'aria-label': provider },
      h('h3', {}, provider),
      h('table', { class: 'list keys' },
        h('thead', {}, h('tr', {}, ['Alias', 'Key', 'Rate limit', 'Created', 'Last used', 'Requests', 'Errors',
          '', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, keys.map((key) => keyRow(gateway, key))))));
  }
  if (session.can('keysWrite')) {
    const { form } = apiForm({
      title: 'Add a provider key', submitLabel: 'Add key', className: 'add-key',
      fields: [
        { name: 'provider_slug', label: 'Provider', required: true, list: 'provider-list', value: 'openai' },
        { name: 'alias', label: 'Alias', required: true, hint: '1–64 of letters, digits, - and _' },
        { name: 'secret', label: 'Provider API key', type: 'password', required: true, writeOnly: true,
          hint: 'write-only: stored encrypted, never shown again' },
        { name: 'default_config', label: 'Default key for this provider', type: 'checkbox' },
        ...limitFields(null),
      ],
      submit: async (values) => {
        await post(`${gatewayPath(gateway)}/provider_configs`, values);
        refresh();
      },
    });
    body.append(form, h('datalist', { id: 'provider-list' }, PROVIDERS.map((p) => h('option', { value: p }))));
  }
}
