// API tokens of the account: list, create with permission groups (the value is shown once), revoke.

import { ApiError, del, get, post } from '../api.js';
import { badge, confirmed, h, replace, when } from '../dom.js';
import { apiForm } from '../forms.js';
import * as session from '../session.js';

const acct = () => `/accounts/${session.account()}`;

function refresh() {
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

export async function tokensPage(view) {
  document.title = 'Tokens · Sluice console';
  view.append(h('h1', {}, 'API tokens'));
  if (!session.can('tokensRead')) {
    view.append(h('p', { class: 'empty' }, 'These credentials may not list tokens.'));
    return;
  }
  const [{ result: tokens }, { result: groups }] = await Promise.all([
    get(`${acct()}/tokens`, { per_page: 50 }), get(`${acct()}/tokens/permission_groups`)]);
  const mine = session.current().token ? session.current().token.id : null;
  view.append(h('table', { class: 'list tokens', 'aria-label': 'API tokens' },
    h('thead', {}, h('tr', {}, ['Name', 'Status', 'Permissions', 'Issued', 'Expires', 'Last used', '']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, tokens.map((t) => h('tr', { 'data-token': t.name },
      h('th', { scope: 'row' }, t.name, t.id === mine ? [' ', badge('this session', 'default')] : null),
      h('td', {}, t.status),
      h('td', {}, h('ul', { class: 'perms' }, t.permissions.map((p) => h('li', {}, badge(p, 'perm'))))),
      h('td', {}, when(t.issued_on)), h('td', {}, t.expires_on ? when(t.expires_on) : 'never'),
      h('td', {}, when(t.last_used_on)),
      h('td', {}, session.can('tokensWrite') && t.id !== mine ? h('button', {
        type: 'button', class: 'danger', 'aria-label': `Revoke token ${t.name}`,
        onclick: async () => {
          if (!confirmed(`Revoke the token ${t.name}? Clients using it stop working at once.`)) return;
          await del(`${acct()}/tokens/${t.id}`);
          refresh();
        },
      }, 'Revoke') : null))))));
  if (!session.can('tokensWrite')) return;

  const created = h('div', { class: 'created-token', role: 'status' });
  const selectable = groups.filter((g) => g.is_selectable);
  const { form } = apiForm({
    title: 'Create a token', submitLabel: 'Create token', className: 'create-token',
    fields: [
      { name: 'name', label: 'Name', required: true },
      ...selectable.map((g, i) => ({ name: `perm${i}`, label: g.name, type: 'checkbox' })),
      { name: 'expires_on', label: 'Expires (optional)', type: 'datetime-local' },
    ],
    submit: async (values) => {
      const permissions = selectable.filter((g, i) => values[`perm${i}`]).map((g) => g.name);
      if (!permissions.length) {
        throw new ApiError(400, [{ message: 'choose at least one permission group', path: ['body', 'perm0'] }]);
      }
      const body = { name: values.name, permissions };
      if (values.expires_on) body.expires_on = new Date(values.expires_on).toISOString().replace(/\.\d+Z$/, 'Z');
      const { result } = await post(`${acct()}/tokens`, body);
      const value = h('code', { class: 'token-value' }, result.value);
      replace(created, h('p', {}, `Token “${result.name}” created. Copy its value now: it is shown only once.`),
        value, ' ', h('button', {
          type: 'button', class: 'secondary',
          onclick: () => navigator.clipboard && navigator.clipboard.writeText(value.textContent),
        }, 'Copy'), ' ', h('button', { type: 'button', onclick: refresh }, 'Done'));
    },
  });
  view.append(form, created);
}
