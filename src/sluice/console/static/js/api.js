// The console's only way to the server: the v4 management API, as any other client uses it.

import { authHeaders } from './session.js';

const BASE = '/client/v4';
const listeners = { online: [], unauthorized: [] };

export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => e.message).join('; ') || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

export function on(event, callback) {
  listeners[event].push(callback);
}

function emit(event, value) {
  for (const callback of listeners[event]) callback(value);
}

export async function call(method, path, { body, query, raw } = {}) {
  const url = new URL(BASE + path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.append(name, value);
  }
  const headers = { ...authHeaders(), accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
    });
  } catch {
    emit('online', false);
    throw new ApiError(0, [{ code: 0, message: 'The Sluice server cannot be reached.' }]);
  }
  emit('online', true);
  if (raw && response.ok) return response.text();
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: reported below by status
  }
  if (!response.ok || !data || data.success === false) {
    if (response.status === 401) emit('unauthorized', true);
    const errors = data && Array.isArray(data.errors) && data.errors.length
      ? data.errors : [{ code: response.status, message: `HTTP ${response.status}` }];
    throw new ApiError(response.status, errors);
  }
  return data;
}

export const get = (path, query) => call('GET', path, { query });
export const post = (path, body) => call('POST', path, { body });
export const put = (path, body) => call('PUT', path, { body });
export const del = (path) => call('DELETE', path);
