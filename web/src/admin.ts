// The admin pages: /users (add with a role, change the role, reset the password, delete), /tokens (API tokens:
// create with scopes and an expiry, the secret shown once, revoke) and /webhooks (add with events, the signing
// secret shown once, delete, send a test, each hook's deliveries).
import {
  type ApiToken,
  adminApi,
  can,
  type Delivery,
  el,
  type Me,
  ROLES,
  type Role,
  readableError,
  SCOPES,
  type UserRow,
  WEBHOOK_EVENTS,
  type Webhook,
  when,
} from './api.ts';
import { checkboxes, field, notes, secretBox, table, USER_NAME_PATTERN, uid } from './ui.ts';

const ROLE_TEXT: Record<Role, string> = {
  admin: 'Admin — everything, including users, API tokens and webhooks',
  editor: 'Editor — upload, edit and delete videos, run live streams',
  viewer: 'Viewer — watch, and make signed links',
};

const SCOPE_TEXT: Record<string, string> = {
  'assets:read': 'list and read videos',
  'assets:write': 'change and delete videos, captions',
  'uploads:create': 'upload videos',
  'live:write': 'create and run live streams',
  'playback:sign': 'make signed playback links',
  admin: 'everything, including users, tokens and webhooks',
};

/** The page for admins only: others get a note (the API would refuse them anyway). */
function adminOnly(app: HTMLElement, m: Me, title: string): boolean {
  document.title = `${title} · smoothcast`;
  if (can(m, 'admin')) return true;
  app.replaceChildren(
    el('h1', { text: title }),
    el('p', { class: 'message', role: 'alert', text: 'Only admins can see this page.' }),
  );
  return false;
}

function roleSelect(value: Role, label?: string): HTMLSelectElement {
  const select = el('select', label ? { 'aria-label': label } : {}, ...ROLES.map((r) => el('option', { value: r, text: r })));
  select.value = value;
  return select;
}

// ---- users ---------------------------------------------------------------------------------------------------

export async function renderUsers(app: HTMLElement, m: Me): Promise<void> {
  if (!adminOnly(app, m, 'Users')) return;
  const n = notes();
  const list = el('div', { class: 'users' });

  const row = (u: UserRow): HTMLTableRowElement => {
    const self = u.id === m.user?.id;
    const role = roleSelect(u.role, `Role of ${u.name}`);
    role.addEventListener('change', () => {
      n.clear();
      const to = role.value as Role;
      adminApi.updateUser(u.id, { role: to }).then(
        () => {
          u.role = to;
          n.status.textContent = `${u.name} is now ${to}.`;
        },
        (err) => {
          role.value = u.role;
          n.alert.textContent = `Could not change the role of ${u.name}: ${readableError(err)}`;
        },
      );
    });
    const reset = el('button', { type: 'button', class: 'reset', 'aria-expanded': 'false' }, 'Reset password');
    reset.setAttribute('aria-label', `Reset the password of ${u.name}`);
    const pw = el('input', { type: 'password', autocomplete: 'new-password', minlength: '8', required: '' });
    pw.setAttribute('aria-label', `New password for ${u.name}`);
    const resetForm = el(
      'form',
      { class: 'inline', hidden: '', id: uid('reset') },
      pw,
      el('button', { type: 'submit', class: 'primary' }, 'Set password'),
    );
    reset.setAttribute('aria-controls', resetForm.id);
    reset.addEventListener('click', () => {
      resetForm.hidden = !resetForm.hidden;
      reset.setAttribute('aria-expanded', String(!resetForm.hidden));
      if (!resetForm.hidden) pw.focus();
    });
    resetForm.addEventListener('submit', (e) => {
      e.preventDefault();
      n.clear();
      adminApi.updateUser(u.id, { password: pw.value }).then(
        () => {
          pw.value = '';
          resetForm.hidden = true;
          reset.setAttribute('aria-expanded', 'false');
          n.status.textContent = `New password set for ${u.name}; their sign-ins have ended.`;
          reset.focus();
        },
        (err) => {
          n.alert.textContent = `Could not set the password of ${u.name}: ${readableError(err)}`;
        },
      );
    });
    const del = el('button', { type: 'button', class: 'delete danger', 'aria-label': `Delete ${u.name}` }, 'Delete');
    del.addEventListener('click', () => {
      if (!confirm(`Delete the user “${u.name}”? They can no longer sign in. This cannot be undone.`)) return;
      n.clear();
      adminApi.removeUser(u.id).then(
        () => {
          n.status.textContent = `Deleted ${u.name}.`;
          void draw();
        },
        (err) => {
          n.alert.textContent = `Could not delete ${u.name}: ${readableError(err)}`;
        },
      );
    });
    return el(
      'tr',
      { 'data-id': u.id, 'data-name': u.name },
      el('th', { scope: 'row' }, u.name, ...(self ? [el('span', { class: 'hint', text: ' (you)' })] : [])),
      el('td', {}, role),
      el('td', {}, el('time', { datetime: u.createdAt, text: when(u.createdAt) })),
      el('td', { class: 'row-actions' }, reset, ' ', del, resetForm),
    );
  };

  const draw = async () => {
    try {
      const users = await adminApi.users();
      list.replaceChildren(table('Users', ['Name', 'Role', 'Created', 'Actions'], users.map(row), 'No users.'));
    } catch (err) {
      n.alert.textContent = `Could not load the users: ${readableError(err)}`;
    }
  };

  // Add a user.
  const name = el('input', { type: 'text', name: 'name', required: '', pattern: USER_NAME_PATTERN, maxlength: '64' });
  name.setAttribute('autocapitalize', 'none');
  name.autocomplete = 'off';
  const password = el('input', { type: 'password', name: 'password', required: '', minlength: '8', autocomplete: 'new-password' });
  const role = roleSelect('editor');
  const roles = el('ul', { class: 'hint roles' }, ...ROLES.map((r) => el('li', { text: ROLE_TEXT[r] })));
  const add = el('button', { type: 'submit', class: 'primary' }, 'Add user');
  const addNotes = notes();
  const form = el(
    'form',
    { class: 'panel add-user', 'aria-labelledby': 'add-user-h' },
    el('h2', { id: 'add-user-h', text: 'Add a user' }),
    field('Name', name, 'letters, digits and . _ @ -'),
    field('Password', password, 'at least 8 characters; tell it to them, they can change it on their account page'),
    field('Role', role),
    roles,
    el('div', { class: 'buttons' }, add),
    addNotes.status,
    addNotes.alert,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    addNotes.clear();
    add.disabled = true;
    adminApi
      .addUser({ name: name.value.trim(), password: password.value, role: role.value as Role })
      .then(async (u) => {
        form.reset();
        role.value = 'editor';
        addNotes.status.textContent = `Added ${u.name} (${u.role}).`;
        await draw();
      })
      .catch((err) => {
        addNotes.alert.textContent = `Could not add the user: ${readableError(err)}`;
      })
      .finally(() => {
        add.disabled = false;
      });
  });

  app.replaceChildren(el('h1', { text: 'Users' }), n.status, n.alert, list, form);
  await draw();
}

// ---- API tokens ----------------------------------------------------------------------------------------------

const EXPIRY: [string, number | null][] = [
  ['Never', null],
  ['1 day', 86400],
  ['30 days', 30 * 86400],
  ['1 year', 365 * 86400],
];

function tokenState(t: ApiToken): { text: string; state: 'active' | 'revoked' | 'expired' } {
  if (t.revokedAt) return { text: `Revoked ${when(t.revokedAt)}`, state: 'revoked' };
  if (t.expiresAt && Date.parse(t.expiresAt) <= Date.now()) return { text: 'Expired', state: 'expired' };
  return { text: 'Active', state: 'active' };
}

export async function renderTokens(app: HTMLElement, m: Me): Promise<void> {
  if (!adminOnly(app, m, 'API tokens')) return;
  const n = notes();
  const list = el('div', { class: 'tokens' });
  const secretSlot = el('div', { class: 'secret-slot' });

  const row = (t: ApiToken): HTMLTableRowElement => {
    const st = tokenState(t);
    const revoke = el('button', { type: 'button', class: 'revoke danger', 'aria-label': `Revoke ${t.name}` }, 'Revoke');
    revoke.addEventListener('click', () => {
      if (!confirm(`Revoke the API token “${t.name}”? Whatever uses it stops working at once.`)) return;
      n.clear();
      adminApi.revokeToken(t.id).then(
        () => {
          n.status.textContent = `Revoked ${t.name}.`;
          void draw();
        },
        (err) => {
          n.alert.textContent = `Could not revoke ${t.name}: ${readableError(err)}`;
        },
      );
    });
    return el(
      'tr',
      { 'data-id': t.id, 'data-name': t.name, 'data-state': st.state },
      el('th', { scope: 'row', text: t.name }),
      el('td', { class: 'scopes' }, ...t.scopes.flatMap((s, i) => [i ? ' ' : '', el('code', { text: s })])),
      el('td', {}, el('time', { datetime: t.createdAt, text: when(t.createdAt) })),
      el('td', { text: t.expiresAt ? when(t.expiresAt) : 'Never' }),
      el('td', { text: t.lastUsedAt ? when(t.lastUsedAt) : 'Never' }),
      el('td', { class: 'state' }, el('span', { class: `badge token-state ${st.state}`, text: st.text })),
      el('td', { class: 'row-actions' }, ...(st.state === 'active' ? [revoke] : [])),
    );
  };
  const draw = async () => {
    try {
      const tokens = await adminApi.tokens();
      list.replaceChildren(
        table(
          'API tokens',
          ['Name', 'Scopes', 'Created', 'Expires', 'Last used', 'Status', 'Actions'],
          tokens.map(row),
          'No API tokens yet.',
        ),
      );
    } catch (err) {
      n.alert.textContent = `Could not load the API tokens: ${readableError(err)}`;
    }
  };

  // Create a token.
  const name = el('input', { type: 'text', name: 'name', required: '', maxlength: '100', autocomplete: 'off' });
  name.placeholder = 'CI uploads, CMS, …';
  const scopes = checkboxes('Scopes', 'scopes', SCOPES, SCOPE_TEXT);
  const expiry = el(
    'select',
    { name: 'expiry' },
    ...EXPIRY.map(([text, s]) => el('option', { value: s === null ? '' : String(s), text })),
  );
  expiry.value = String(30 * 86400);
  const create = el('button', { type: 'submit', class: 'primary' }, 'Create token');
  const formNotes = notes();
  const form = el(
    'form',
    { class: 'panel add-token', 'aria-labelledby': 'add-token-h' },
    el('h2', { id: 'add-token-h', text: 'New API token' }),
    field('Name', name, 'what it is for'),
    scopes.fieldset,
    field('Expires', expiry),
    el('div', { class: 'buttons' }, create),
    formNotes.alert,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    formNotes.clear();
    const chosen = scopes.checked();
    if (!chosen.length) {
      formNotes.alert.textContent = 'Choose at least one scope.';
      return;
    }
    create.disabled = true;
    adminApi
      .addToken({
        name: name.value.trim(),
        scopes: chosen,
        ...(expiry.value ? { expiresInSeconds: Number(expiry.value) } : {}),
      })
      .then(async (t) => {
        form.reset();
        scopes.clear();
        expiry.value = String(30 * 86400);
        secretSlot.replaceChildren(
          secretBox(
            `API token “${t.name}”`,
            'Token',
            t.secret,
            'Copy this token now: it is shown only this once. Send it as “Authorization: Bearer <token>”.',
          ),
        );
        await draw();
      })
      .catch((err) => {
        formNotes.alert.textContent = `Could not create the token: ${readableError(err)}`;
      })
      .finally(() => {
        create.disabled = false;
      });
  });

  app.replaceChildren(
    el('h1', { text: 'API tokens' }),
    el('p', {
      class: 'lead',
      text: 'Scripts and other servers call the API with a token (Authorization: Bearer …), holding only the scopes it was created with.',
    }),
    secretSlot,
    n.status,
    n.alert,
    list,
    form,
  );
  await draw();
}

// ---- webhooks ------------------------------------------------------------------------------------------------

function deliveriesTable(hook: Webhook, deliveries: Delivery[]): HTMLElement {
  const rows = deliveries.map((d) =>
    el(
      'tr',
      { 'data-id': d.id, 'data-status': d.status },
      el('th', { scope: 'row' }, el('code', { text: d.event })),
      el('td', {}, el('span', { class: `badge delivery-state ${d.status}`, text: d.status })),
      el('td', { text: String(d.attempts) }),
      el('td', { text: d.lastStatus ? String(d.lastStatus) : '–' }),
      el('td', { class: 'error', text: d.lastError ?? '–' }),
      el('td', { text: when(d.createdAt) }),
      el('td', { text: when(d.deliveredAt) }),
      el('td', { text: when(d.nextAttemptAt) }),
    ),
  );
  return table(
    `Deliveries to ${hook.url}`,
    ['Event', 'Status', 'Attempts', 'Last answer', 'Last error', 'Created', 'Delivered', 'Next attempt'],
    rows,
    'No deliveries yet.',
  );
}

export async function renderWebhooks(app: HTMLElement, m: Me): Promise<void> {
  if (!adminOnly(app, m, 'Webhooks')) return;
  const n = notes();
  const list = el('ul', { class: 'hooks', 'aria-label': 'Webhooks' });
  const secretSlot = el('div', { class: 'secret-slot' });

  const item = (h: Webhook): HTMLElement => {
    const log = el('div', { class: 'deliveries', hidden: '', id: uid('deliveries') });
    const show = el(
      'button',
      { type: 'button', class: 'show-deliveries', 'aria-expanded': 'false', 'aria-controls': log.id },
      'Deliveries',
    );
    const again = el('button', { type: 'button', class: 'refresh' }, 'Refresh');
    again.setAttribute('aria-label', `Refresh the deliveries to ${h.url}`);
    again.addEventListener('click', () => void refresh());
    const rows = el('div', { class: 'rows' });
    log.append(el('div', { class: 'row' }, el('h3', { text: 'Deliveries' }), again), rows);
    const refresh = async () => {
      try {
        rows.replaceChildren(deliveriesTable(h, await adminApi.deliveries(h.id)));
      } catch (err) {
        rows.replaceChildren(el('p', { class: 'message', text: `Could not load the deliveries: ${readableError(err)}` }));
      }
    };
    show.addEventListener('click', () => {
      log.hidden = !log.hidden;
      show.setAttribute('aria-expanded', String(!log.hidden));
      if (!log.hidden) void refresh();
    });
    const test = el('button', { type: 'button', class: 'test' }, 'Send test');
    test.setAttribute('aria-label', `Send a test event to ${h.url}`);
    test.addEventListener('click', () => {
      n.clear();
      test.disabled = true;
      adminApi
        .testWebhook(h.id)
        .then(async () => {
          n.status.textContent = `Test event sent to ${h.url}; its delivery is listed under the hook.`;
          log.hidden = false;
          show.setAttribute('aria-expanded', 'true');
          await refresh();
          // The delivery is made in the background: look again shortly.
          setTimeout(() => void refresh(), 1500);
        })
        .catch((err) => {
          n.alert.textContent = `Could not send a test: ${readableError(err)}`;
        })
        .finally(() => {
          test.disabled = false;
        });
    });
    const del = el('button', { type: 'button', class: 'delete danger' }, 'Delete');
    del.setAttribute('aria-label', `Delete the webhook ${h.url}`);
    del.addEventListener('click', () => {
      if (!confirm(`Delete the webhook to ${h.url}? No more events are sent to it.`)) return;
      n.clear();
      adminApi.removeWebhook(h.id).then(
        () => {
          n.status.textContent = `Deleted the webhook to ${h.url}.`;
          void draw();
        },
        (err) => {
          n.alert.textContent = `Could not delete the webhook: ${readableError(err)}`;
        },
      );
    });
    return el(
      'li',
      { class: 'hook panel', 'data-id': h.id },
      el(
        'p',
        { class: 'url' },
        el('code', { text: h.url }),
        ...(h.disabledAt ? [' ', el('span', { class: 'badge disabled', text: `disabled ${when(h.disabledAt)}` })] : []),
      ),
      el(
        'p',
        { class: 'meta' },
        'Events: ',
        ...h.events.flatMap((e, i) => [i ? ', ' : '', el('code', { text: e })]),
        ' · created ',
        el('time', { datetime: h.createdAt, text: when(h.createdAt) }),
      ),
      el('div', { class: 'actions' }, show, test, del),
      log,
    );
  };
  const draw = async () => {
    try {
      const hooks = await adminApi.webhooks();
      list.replaceChildren(...hooks.map(item));
      if (!hooks.length) list.append(el('li', { class: 'empty', text: 'No webhooks yet.' }));
    } catch (err) {
      n.alert.textContent = `Could not load the webhooks: ${readableError(err)}`;
    }
  };

  const url = el('input', { type: 'url', name: 'url', required: '', autocomplete: 'off', spellcheck: 'false' });
  url.placeholder = 'https://example.com/hooks/smoothcast';
  const events = checkboxes('Events', 'events', WEBHOOK_EVENTS);
  const add = el('button', { type: 'submit', class: 'primary' }, 'Add webhook');
  const formNotes = notes();
  const form = el(
    'form',
    { class: 'panel add-webhook', 'aria-labelledby': 'add-webhook-h' },
    el('h2', { id: 'add-webhook-h', text: 'New webhook' }),
    field('URL', url, 'http(s)://host[:port]/path that accepts a POST'),
    events.fieldset,
    el('div', { class: 'buttons' }, add),
    formNotes.alert,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    formNotes.clear();
    const chosen = events.checked();
    if (!chosen.length) {
      formNotes.alert.textContent = 'Choose at least one event.';
      return;
    }
    add.disabled = true;
    adminApi
      .addWebhook({ url: url.value.trim(), events: chosen })
      .then(async (h) => {
        form.reset();
        events.clear();
        secretSlot.replaceChildren(
          secretBox(
            `Signing secret of ${h.url}`,
            'Signing secret',
            h.secret,
            'Copy this secret now: it is shown only this once. The receiver checks each event’s signature with it (Standard Webhooks).',
          ),
        );
        await draw();
      })
      .catch((err) => {
        formNotes.alert.textContent = `Could not add the webhook: ${readableError(err)}`;
      })
      .finally(() => {
        add.disabled = false;
      });
  });

  app.replaceChildren(
    el('h1', { text: 'Webhooks' }),
    el('p', {
      class: 'lead',
      text: 'smoothcast POSTs a signed JSON event to each URL when something happens to a video or a live stream; failed deliveries are retried.',
    }),
    secretSlot,
    n.status,
    n.alert,
    list,
    form,
  );
  await draw();
}
