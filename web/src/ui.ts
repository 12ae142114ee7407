// Form pieces the account and admin pages share: labelled fields, checkbox groups, copying to the clipboard, a
// secret shown once, and the "only for admins" note.
import { el } from './api.ts';

let seq = 0;
/** A page-unique element id. */
export function uid(prefix: string): string {
  seq += 1;
  return `${prefix}-${seq}`;
}

/** A user name as the server takes it: 1–64 letters, digits or . _ @ - starting with a letter or digit. */
export const USER_NAME_PATTERN = '[A-Za-z0-9][A-Za-z0-9._@\\-]{0,63}';

/** A label above its input (or select), and a hint under it that the input is described by. */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement, hint?: string): HTMLElement {
  if (!input.id) input.id = uid('f');
  const children: (Node | string)[] = [el('label', { for: input.id, text: label }), input];
  if (hint) {
    const h = el('span', { class: 'hint', id: `${input.id}-hint`, text: hint });
    input.setAttribute('aria-describedby', h.id);
    children.push(h);
  }
  return el('div', { class: 'field' }, ...children);
}

/** A fieldset of checkboxes, one per value (its label from `labels`, else the value itself). */
export function checkboxes(
  legend: string,
  name: string,
  values: readonly string[],
  labels: Record<string, string> = {},
): { fieldset: HTMLFieldSetElement; checked(): string[]; clear(): void } {
  const boxes = values.map((v) => el('input', { type: 'checkbox', name, value: v }));
  const fieldset = el(
    'fieldset',
    { class: 'field checks' },
    el('legend', { text: legend }),
    ...boxes.map((b) =>
      el('label', { class: 'choice' }, b, ' ', el('code', { text: b.value }), ...(labels[b.value] ? [el('span', { class: 'hint', text: ` ${labels[b.value]}` })] : [])),
    ),
  );
  return {
    fieldset,
    checked: () => boxes.filter((b) => b.checked).map((b) => b.value),
    clear() {
      for (const b of boxes) b.checked = false;
    },
  };
}

/** Copies `value`, saying "Copied" on the button for a while; `field` is selected (the fallback copies it). */
export function copyText(value: string, btn: HTMLButtonElement, field?: HTMLInputElement): void {
  btn.dataset.label ??= btn.textContent ?? 'Copy';
  const label = btn.dataset.label;
  const done = () => {
    btn.textContent = 'Copied';
    setTimeout(() => {
      btn.textContent = label;
    }, 2000);
  };
  field?.select();
  // The Clipboard API needs a secure context (https or localhost); a LAN address over http gets the old way.
  if (navigator.clipboard) void navigator.clipboard.writeText(value).then(done, () => {});
  else if (field && document.execCommand('copy')) done();
}

/** A read-only field with a Copy button. */
export function copyRow(label: string, value: string, name = ''): HTMLElement {
  const input = el('input', { type: 'text', readonly: '', value, 'aria-label': label, spellcheck: 'false' });
  if (name) input.dataset.field = name;
  input.value = value;
  const btn = el('button', { type: 'button', 'aria-label': `Copy ${label}` }, 'Copy');
  btn.addEventListener('click', () => copyText(input.value, btn, input));
  return el('div', { class: 'copy' }, el('span', { class: 'label', text: label }), input, btn);
}

/**
 * A secret the server shows once (an API token, a webhook signing secret): a warning, the value with a Copy
 * button, and a button to put it away. It takes the keyboard focus so it is not missed.
 */
export function secretBox(title: string, label: string, secret: string, warning: string): HTMLElement {
  const done = el('button', { type: 'button' }, 'I have stored it');
  const box = el(
    'section',
    { class: 'secret', role: 'alert', 'aria-label': title, tabindex: '-1' },
    el('h2', { text: title }),
    el('p', { class: 'warning', text: warning }),
    copyRow(label, secret, 'secret'),
    el('div', { class: 'buttons' }, done),
  );
  done.addEventListener('click', () => box.remove());
  queueMicrotask(() => box.focus());
  return box;
}

/** A polite status line (what just happened) and an alert line (what went wrong). */
export function notes(): { status: HTMLParagraphElement; alert: HTMLParagraphElement; clear(): void } {
  const status = el('p', { class: 'done', role: 'status', 'aria-live': 'polite' });
  // Not `.message`: that is the player's own line on the watch page.
  const alert = el('p', { class: 'alert', role: 'alert' });
  return {
    status,
    alert,
    clear() {
      status.textContent = '';
      alert.textContent = '';
    },
  };
}

/** A table with a caption hidden from sight (screen readers name it), scrolling sideways on a narrow screen. */
export function table(caption: string, heads: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  const body = el('tbody', {}, ...rows);
  if (!rows.length) body.append(el('tr', { class: 'empty' }, el('td', { colspan: String(heads.length), text: empty })));
  return el(
    'div',
    { class: 'table' },
    el(
      'table',
      {},
      el('caption', { class: 'sr-only', text: caption }),
      el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', { scope: 'col', text: h })))),
      body,
    ),
  );
}
