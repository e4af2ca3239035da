// Credentials live in sessionStorage only: they survive a reload of this tab, are gone when the tab
// closes, are never in a URL, a cookie or a log, and are sent as a header (so there is nothing for a
// cross-site request to ride on: no CSRF). See docs/console.md, "Security".

const KEY = 'sluice.console.credentials';
let identity = null; // {accounts, permissions, credential, token}: in memory only

export function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch {
    return null;
  }
}

export function remember(creds) {
  sessionStorage.setItem(KEY, JSON.stringify(creds));
}

export function forget() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(ACCOUNT_KEY);
  identity = null;
}

export function authHeaders() {
  const creds = credentials();
  if (!creds) return {};
  if (creds.token) return { authorization: `Bearer ${creds.token}` };
  return { 'x-auth-email': creds.email, 'x-auth-key': creds.key };
}

export function setIdentity(value) {
  identity = value;
}

export function current() {
  return identity;
}

const ACCOUNT_KEY = 'sluice.console.account'; // the chosen account, when the credentials reach several

export function account() {
  if (!identity) return null;
  const chosen = sessionStorage.getItem(ACCOUNT_KEY);
  return identity.accounts.includes(chosen) ? chosen : identity.accounts[0];
}

export function chooseAccount(id) {
  sessionStorage.setItem(ACCOUNT_KEY, id);
}

// The permission groups each operation accepts (docs/api.md, "Authentication"); one is enough.
const ACCEPTS = {
  gatewayRead: ['AI Gateway Read', 'AI Gateway Write'],
  gatewayWrite: ['AI Gateway Write'],
  keysRead: ['Secrets Store Read', 'Secrets Store Write', 'AI Gateway Read', 'AI Gateway Write'],
  keysWrite: ['Secrets Store Write'],
  tokensRead: ['Account API Tokens Read', 'Account API Tokens Write'],
  tokensWrite: ['Account API Tokens Write'],
};

export function can(operation) {
  return Boolean(identity) && ACCEPTS[operation].some((group) => identity.permissions.includes(group));
}
