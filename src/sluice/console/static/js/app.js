// The console shell: sign-in, the header (who is signed in, with which permissions), the lost-server
// banner and the hash router (#/gateways, #/gateways/{id}/keys, …). Pages live in pages/*.js.

import { ApiError, get, on } from './api.js';
import { badge, h, replace } from './dom.js';
import { apiForm } from './forms.js';
import * as session from './session.js';
import { gatewayPage, gatewaysPage } from './pages/gateways.js';
import { tokensPage } from './pages/tokens.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
let healthTimer = null;

on('online', (online) => {
  banner.hidden = online;
  if (online) {
    clearInterval(healthTimer);
    healthTimer = null;
    return;
  }
  replace(banner, 'Lost connection to the Sluice server. Retrying…');
  if (!healthTimer) {
    healthTimer = setInterval(async () => {
      try {
        if ((await fetch('/healthz', { cache: 'no-store' })).ok) {
          banner.hidden = true;
          clearInterval(healthTimer);
          healthTimer = null;
        }
      } catch {
        // still away
      }
    }, 3000);
  }
});

on('unauthorized', () => {
  if (session.current()) signOut('Your credentials are no longer valid. Sign in again.');
});

function signOut(message) {
  session.forget();
  document.getElementById('nav').hidden = true;
  replace(document.getElementById('who'));
  if (window.location.hash) window.history.replaceState(null, '', window.location.pathname);
  signInPage(message);
}

function header(identity) {
  const who = document.getElementById('who');
  const name = identity.token ? `Token “${identity.token.name}”` : 'Global API key';
  replace(who,
    h('span', { class: 'who-name' }, name),
    identity.accounts.length > 1 ? accountPicker(identity.accounts)
      : h('span', { class: 'who-account' }, `account ${session.account()}`),
    h('ul', { class: 'perms', 'aria-label': 'Permissions of these credentials' },
      identity.permissions.map((p) => h('li', {}, badge(p, 'perm')))),
    h('button', { type: 'button', class: 'secondary', id: 'sign-out', onclick: () => signOut() }, 'Sign out'));
  document.getElementById('nav').hidden = false;
  document.getElementById('nav-tokens').hidden = !session.can('tokensRead');
}

function accountPicker(accounts) {
  const select = h('select', { id: 'account', class: 'who-account' },
    accounts.map((id) => h('option', { value: id }, id)));
  select.value = session.account();
  select.addEventListener('change', () => {
    session.chooseAccount(select.value);
    if (window.location.hash === '#/gateways') route();
    else window.location.hash = '#/gateways';
  });
  return h('span', {}, h('label', { for: 'account' }, 'Account '), select);
}

function signInPage(message) {
  const tokenForm = apiForm({
    title: 'Sign in with an API token',
    fields: [{ name: 'token', label: 'API token', type: 'password', required: true, writeOnly: true }],
    submitLabel: 'Sign in',
    submit: ({ token }) => signIn({ token: (token || '').trim() }, 'token'),
  });
  const keyForm = apiForm({
    title: 'Or with an email and global API key',
    fields: [{ name: 'email', label: 'Email', type: 'email', autocomplete: 'username' },
      { name: 'key', label: 'Global API key', type: 'password', writeOnly: true }],
    submitLabel: 'Sign in with key',
    submit: ({ email, key }) => signIn({ email: email || '', key: key || '' }, 'key'),
  });
  replace(main,
    h('section', { class: 'sign-in' },
      h('h1', {}, 'Sign in'),
      message ? h('p', { class: 'notice', role: 'status' }, message) : null,
      h('p', {}, 'Credentials stay in this browser tab only (session storage) and are sent as a header.'),
      tokenForm.form, keyForm.form));
  document.title = 'Sign in · Sluice console';
}

async function signIn(creds, field) {
  if (!(creds.token || (creds.email && creds.key))) {
    throw new ApiError(400, [{ message: 'Enter the credentials', path: ['body', field] }]);
  }
  session.remember(creds);
  try {
    await loadIdentity();
  } catch (error) {
    session.forget();
    if (error instanceof ApiError && error.status === 401) {
      throw new ApiError(401, [{ message: 'These credentials are not valid.', path: ['body', field] }]);
    }
    throw error;
  }
  route();
}

async function loadIdentity() {
  const { result } = await get('/sluice/identity');
  if (!result.accounts.length) throw new ApiError(403, [{ message: 'These credentials own no account.' }]);
  session.setIdentity(result);
  header(result);
}

function parseHash() {
  const [path, query] = window.location.hash.replace(/^#/, '').split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

async function route() {
  if (!session.current()) {
    if (!session.credentials()) return signInPage();
    try {
      await loadIdentity();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signOut();
      return replace(main, h('p', { class: 'form-error', role: 'alert' }, error.message));
    }
  }
  const { parts, params } = parseHash();
  const view = h('div', { class: 'view' });
  replace(main, view);
  try {
    if (parts[0] === 'tokens') await tokensPage(view);
    else if (parts[0] === 'gateways' && parts[1]) await gatewayPage(view, parts[1], parts[2] || 'keys', parts[3], params);
    else await gatewaysPage(view);
  } catch (error) {
    append404(view, error);
  }
  main.focus({ preventScroll: true });
}

function append404(view, error) {
  view.append(h('p', { class: 'form-error', role: 'alert' }, error.message || String(error)));
}

window.addEventListener('hashchange', route);
route();
