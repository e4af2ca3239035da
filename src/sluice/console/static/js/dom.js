// Tiny DOM helpers: elements are built with createElement and text nodes only (never innerHTML), so
// nothing from the API is ever parsed as markup. No style attributes: the CSP allows none.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function when(stamp) {
  if (!stamp) return 'never';
  const date = new Date(stamp);
  return h('time', { datetime: stamp, title: stamp }, date.toLocaleString());
}

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || ''}`.trim() }, text);
}

export function confirmed(message) {
  return window.confirm(message);
}
