// Signing in and out: the header's user and "Sign out" (and, for admins, the admin pages), /login, /setup (the
// first run: the one-time code from the server log makes the first admin) and /account (changing the password).
import { ApiError, accountApi, can, el, type Me, me, readableError, safeNext, signInHref } from './api.ts';
import { field, notes, USER_NAME_PATTERN } from './ui.ts';

/** The admin pages, in the header for admins. */
const ADMIN_PAGES: [string, string][] = [
  ['users', 'Users'],
  ['tokens', 'API tokens'],
  ['webhooks', 'Webhooks'],
];

export function renderHeader(m: Me): void {
  const header = document.querySelector('header.top');
  const nav = header?.querySelector('nav');
  if (!header || !nav) return;
  if (m.user && (m.user.role === 'admin' || can(m, 'admin'))) {
    for (const [page, text] of ADMIN_PAGES) nav.append(el('a', { href: `/${page}`, 'data-nav': page, text }));
  }
  const box = el('div', { class: 'session' });
  if (m.user) {
    const out = el('button', { type: 'button', class: 'signout' }, 'Sign out');
    out.addEventListener('click', () => {
      out.disabled = true;
      void accountApi
        .logout()
        .catch(() => {})
        .finally(() => location.assign('/login'));
    });
    box.append(
      el(
        'a',
        { href: '/account', 'data-nav': 'account', class: 'who', title: 'Your account' },
        m.user.name,
        ' ',
        el('span', { class: `badge role ${m.user.role}`, text: m.user.role }),
      ),
      out,
    );
  } else if (!m.open) {
    box.append(
      m.setupRequired
        ? el('a', { href: '/setup', 'data-nav': 'setup', text: 'Set up' })
        : el('a', { href: signInHref(), 'data-nav': 'login', text: 'Sign in' }),
    );
  }
  header.append(box);
}

function passwordInput(autocomplete: 'current-password' | 'new-password', name: string): HTMLInputElement {
  const input = el('input', { type: 'password', name, required: '', autocomplete });
  if (autocomplete === 'new-password') input.minLength = 8;
  return input;
}

/** A new password typed twice: the second must match (said by the browser's own validation). */
function newPassword(): { fields: HTMLElement[]; value(): string; check(): boolean } {
  const first = passwordInput('new-password', 'password');
  const again = passwordInput('new-password', 'password2');
  const sync = () => again.setCustomValidity(again.value && again.value !== first.value ? 'The passwords differ.' : '');
  first.addEventListener('input', sync);
  again.addEventListener('input', sync);
  return {
    fields: [field('New password', first, 'at least 8 characters'), field('New password again', again)],
    value: () => first.value,
    check() {
      sync();
      return again.reportValidity();
    },
  };
}

export function renderLogin(app: HTMLElement, m: Me): void {
  const next = safeNext(new URLSearchParams(location.search).get('next'));
  const name = el('input', { type: 'text', name: 'name', required: '', autocomplete: 'username', spellcheck: 'false' });
  name.setAttribute('autocapitalize', 'none');
  const password = passwordInput('current-password', 'password');
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const { alert } = notes();
  const form = el(
    'form',
    { class: 'panel auth', 'aria-labelledby': 'login-h' },
    el('h1', { id: 'login-h', text: 'Sign in' }),
    ...(m.setupRequired
      ? [
          el(
            'p',
            { class: 'notice' },
            'This server has no users yet: ',
            el('a', { href: '/setup', text: 'set up the first admin' }),
            '.',
          ),
        ]
      : []),
    ...(m.user ? [el('p', { class: 'hint', text: `You are signed in as ${m.user.name}; sign in again to switch.` })] : []),
    field('Name', name),
    field('Password', password),
    el('div', { class: 'buttons' }, submit),
    alert,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    alert.textContent = '';
    submit.disabled = true;
    accountApi.login(name.value.trim(), password.value).then(
      () => location.assign(next),
      (err) => {
        alert.textContent = readableError(err);
        submit.disabled = false;
        password.select();
      },
    );
  });
  app.replaceChildren(form);
  document.title = 'Sign in · smoothcast';
  (m.user ? password : name).focus();
}

export function renderSetup(app: HTMLElement, m: Me): void {
  document.title = 'Set up · smoothcast';
  if (!m.setupRequired) {
    app.replaceChildren(
      el(
        'section',
        { class: 'panel auth' },
        el('h1', { text: 'Set up' }),
        el('p', {}, 'This server is set up already: ', el('a', { href: signInHref('/'), text: 'sign in' }), '.'),
      ),
    );
    return;
  }
  const code = el('input', { type: 'text', name: 'code', required: '', autocomplete: 'off', spellcheck: 'false' });
  code.setAttribute('autocapitalize', 'none');
  const name = el('input', {
    type: 'text',
    name: 'name',
    required: '',
    autocomplete: 'username',
    spellcheck: 'false',
    pattern: USER_NAME_PATTERN,
    maxlength: '64',
  });
  name.setAttribute('autocapitalize', 'none');
  const password = newPassword();
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Create the admin account');
  const { alert } = notes();
  const form = el(
    'form',
    { class: 'panel auth', 'aria-labelledby': 'setup-h' },
    el('h1', { id: 'setup-h', text: 'Set up smoothcast' }),
    el('p', {
      class: 'hint',
      text: 'Create the first admin account. The one-time setup code is printed in the server’s log when it starts.',
    }),
    field('Setup code', code, 'from the server log'),
    field('Admin name', name, 'letters, digits and . _ @ -'),
    ...password.fields,
    el('div', { class: 'buttons' }, submit),
    alert,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!password.check()) return;
    alert.textContent = '';
    submit.disabled = true;
    accountApi.setup(code.value.trim(), name.value.trim(), password.value()).then(
      () => location.assign('/'),
      (err) => {
        alert.textContent = readableError(err);
        submit.disabled = false;
      },
    );
  });
  app.replaceChildren(form);
  code.focus();
}

export function renderAccount(app: HTMLElement, m: Me): void {
  document.title = 'Your account · smoothcast';
  if (!m.user) {
    app.replaceChildren(
      el('h1', { text: 'Your account' }),
      el('p', {}, el('a', { href: signInHref(), text: 'Sign in' }), ' to see your account.'),
    );
    return;
  }
  const current = passwordInput('current-password', 'current');
  const password = newPassword();
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Change password');
  const { status, alert } = notes();
  const form = el(
    'form',
    { class: 'panel', 'aria-labelledby': 'password-h' },
    el('h2', { id: 'password-h', text: 'Change your password' }),
    field('Current password', current),
    ...password.fields,
    el('div', { class: 'buttons' }, submit),
    status,
    alert,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!password.check()) return;
    status.textContent = '';
    alert.textContent = '';
    submit.disabled = true;
    accountApi
      .changePassword(current.value, password.value())
      .then(async () => {
        form.reset();
        status.textContent = 'Password changed. Your other sign-ins have ended.';
        // A new password may end this sign-in too: then sign in again with it.
        if (!(await me(true)).user) location.assign(signInHref('/account'));
      })
      .catch((err) => {
        alert.textContent =
          err instanceof ApiError && err.code === 'LOGIN_FAILED' ? 'The current password is wrong.' : readableError(err);
        if (err instanceof ApiError && err.code === 'LOGIN_FAILED') current.select();
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
  app.replaceChildren(
    el('h1', { text: 'Your account' }),
    el(
      'dl',
      { class: 'settings panel' },
      el('div', {}, el('dt', { text: 'Name' }), el('dd', { text: m.user.name })),
      el('div', {}, el('dt', { text: 'Role' }), el('dd', { text: m.user.role })),
      el('div', {}, el('dt', { text: 'Allowed' }), el('dd', { text: m.scopes.join(', ') || '–' })),
    ),
    form,
  );
}
