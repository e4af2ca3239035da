// Forms whose errors come from the API: a 400's errors name the field in `path` (["body", "alias"]),
// and the message is shown next to that field; anything else is shown at the top of the form.

import { ApiError } from './api.js';
import { h, replace } from './dom.js';

let serial = 0;

function input(field, id, errorId) {
  const common = { id, name: field.name, 'aria-describedby': errorId };
  if (field.type === 'checkbox') {
    return h('input', { ...common, type: 'checkbox', checked: field.value });
  }
  if (field.type === 'select') {
    const select = h('select', common, field.options.map(([value, label]) => h('option', { value }, label)));
    if (field.value !== undefined) select.value = field.value;
    return select;
  }
  return h('input', {
    ...common, type: field.type || 'text', value: field.value ?? '', placeholder: field.placeholder,
    required: field.required, autocomplete: field.type === 'password' ? 'off' : field.autocomplete,
    step: field.step, list: field.list, spellcheck: field.type === 'password' ? 'false' : null,
  });
}

// fields: [{name, label, type, value, required, options, hint, number, nullable}]
// submit(values) -> Promise; values hold numbers for `number` fields; empty fields are left out.
export function apiForm({ title, fields, submitLabel, submit, className, onCancel }) {
  const form = h('form', { class: `api-form ${className || ''}`.trim(), novalidate: true });
  const formError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const controls = {};
  const errors = {};
  if (title) form.append(h('h3', {}, title));
  form.append(formError);
  for (const field of fields) {
    const id = `f${++serial}-${field.name}`;
    const errorId = `${id}-error`;
    const control = input(field, id, errorId);
    const error = h('span', { id: errorId, class: 'field-error', 'data-field': field.name, role: 'alert' });
    controls[field.name] = control;
    errors[field.name] = error;
    const label = h('label', { for: id }, field.label);
    const hint = field.hint ? h('small', { class: 'hint' }, field.hint) : null;
    form.append(field.type === 'checkbox'
      ? h('div', { class: 'field check' }, control, label, hint, error)
      : h('div', { class: 'field' }, label, control, hint, error));
  }
  const button = h('button', { type: 'submit' }, submitLabel || 'Save');
  const actions = h('div', { class: 'actions' }, button);
  if (onCancel) actions.append(h('button', { type: 'button', class: 'secondary', onclick: onCancel }, 'Cancel'));
  form.append(actions);

  function clearErrors() {
    formError.hidden = true;
    replace(formError);
    for (const [name, error] of Object.entries(errors)) {
      replace(error);
      controls[name].removeAttribute('aria-invalid');
    }
  }

  function values() {
    const out = {};
    for (const field of fields) {
      const control = controls[field.name];
      if (field.type === 'checkbox') out[field.name] = control.checked;
      else if (control.value === '') {
        if (field.nullable) out[field.name] = null;
      } else out[field.name] = field.number ? Number(control.value) : control.value;
    }
    return out;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    const submitted = values();
    for (const field of fields) {
      if (field.writeOnly) controls[field.name].value = ''; // a secret never stays in the page
    }
    button.disabled = true;
    try {
      await submit(submitted);
    } catch (error) {
      showErrors(error);
    } finally {
      button.disabled = false;
    }
  });

  function showErrors(error) {
    const list = error instanceof ApiError ? error.errors : [{ message: String(error.message || error) }];
    const general = [];
    for (const item of list) {
      const name = Array.isArray(item.path) ? item.path[1] : undefined;
      if (name !== undefined && errors[name]) {
        errors[name].append(item.message);
        controls[name].setAttribute('aria-invalid', 'true');
      } else general.push(item.message);
    }
    if (general.length) {
      formError.hidden = false;
      replace(formError, general.join(' '));
    }
    const firstInvalid = form.querySelector('[aria-invalid="true"]');
    if (firstInvalid) firstInvalid.focus();
  }

  return { form, controls, showErrors };
}

// A modal dialog holding one API form (rotate a key, change a limit, edit); closes when submit succeeds.
export function dialogForm({ title, fields, submitLabel, submit }) {
  const dialog = h('dialog', { class: 'dialog', 'aria-label': title });
  const close = () => { dialog.close(); dialog.remove(); };
  const { form } = apiForm({
    title, fields, submitLabel, onCancel: close,
    submit: async (values) => { await submit(values); close(); },
  });
  dialog.append(form);
  dialog.addEventListener('cancel', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
