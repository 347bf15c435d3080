// The Faultline dashboard: a browser client of Faultline's own REST API, making the same calls
// a curl user makes (README, /docs). It holds no rules of its own: the server validates every
// change and the dashboard shows the server's answer, refusals included.
//
// Everything the server returns goes into the page as text (textContent, attribute values),
// never as HTML: events carry whatever the monitored application sent, and the page's
// Content-Security-Policy forbids inline script besides.

'use strict';

const KEY = 'faultline.key';
const PROJECT = 'faultline.project';

// ---------- the session: an API key, kept for this tab (or this browser, if asked) ----------

const session = {
  get key() {
    return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || '';
  },
  get project() {
    return sessionStorage.getItem(PROJECT) || '';
  },
  set project(id) {
    if (id) sessionStorage.setItem(PROJECT, id);
    else sessionStorage.removeItem(PROJECT);
  },
  signIn(key, remember) {
    sessionStorage.setItem(KEY, key);
    if (remember) localStorage.setItem(KEY, key);
  },
  signOut() {
    for (const s of [sessionStorage, localStorage]) {
      s.removeItem(KEY);
      s.removeItem(PROJECT);
    }
  },
};

// ---------- DOM ----------

/** Builds an element; strings among the children become text nodes, never markup. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'checked' || k === 'value' || k === 'disabled') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel) => document.querySelector(sel);

function flash(message, kind = 'error') {
  const box = $('#flash');
  box.className = `flash ${kind}`;
  box.textContent = message;
  box.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => (box.hidden = true), kind === 'error' ? 10000 : 4000);
}

function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const t = new Date(iso);
  const ago = Math.round((Date.now() - t.getTime()) / 1000);
  const s = Math.abs(ago);
  const span = s < 3600 ? `${Math.round(s / 60)} min` : s < 86400 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
  let rel;
  if (s < 45) rel = 'just now';
  else if (s >= 86400 * 60) rel = t.toISOString().slice(0, 10);
  else rel = ago > 0 ? `${span} ago` : `in ${span}`;
  return h('time', { datetime: iso, title: t.toString() }, rel);
}

const badge = (text, kind) => h('span', { class: `badge ${kind || String(text).toLowerCase()}` }, text);
const link = (hash, ...text) => h('a', { href: hash }, ...text);
const issueHref = (id) => `#/issues/${encodeURIComponent(id)}`;
const eventHref = (id) => `#/events/${encodeURIComponent(id)}`;

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code || '';
  }
}

async function api(path, { method = 'GET', body, key } = {}) {
  const headers = { Authorization: `Bearer ${key || session.key}` };
  if (session.project && !key) headers['X-Faultline-Project'] = session.project;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, `The server cannot be reached (${e.message}).`);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    // The native body {error: {code, message, …}} or the Error Logging System's {error: "…", code}.
    const err = data && data.error;
    const message =
      (typeof err === 'string' && err) || (err && err.message) || `${res.status} ${res.statusText}`;
    const code = (err && err.code) || (data && data.code) || '';
    const detail = data && (data.details || (err && err.details));
    const fields = Array.isArray(detail)
      ? detail.map((d) => (d && d.field ? `${d.field}: ${d.message || d.issue || ''}` : '')).filter(Boolean)
      : [];
    throw new ApiError(res.status, fields.length ? `${message} (${fields.join('; ')})` : message, code);
  }
  return data;
}

/** The Error Logging System routes (/api/…) wrap their answers in {data, status}. */
const els = async (path, opts) => (await api(path, opts)).data;

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

// ---------- routing ----------

function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const cut = raw.indexOf('?');
  const path = cut < 0 ? raw : raw.slice(0, cut);
  const params = new URLSearchParams(cut < 0 ? '' : raw.slice(cut + 1));
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p; // a malformed escape: the server answers for the id as typed
    }
  });
  return { parts, params };
}

function go(parts, params) {
  const path = parts.map(encodeURIComponent).join('/');
  const q = params ? params.toString() : '';
  location.hash = `#/${path}${q ? `?${q}` : ''}`;
}

let renderSeq = 0;

async function render() {
  const seq = ++renderSeq;
  const main = $('#main');
  const { parts, params } = route();
  if (!session.key) {
    setChrome(false);
    main.replaceChildren(viewSignIn());
    return;
  }
  setChrome(true, parts[0] || 'issues');
  main.replaceChildren(h('p', { class: 'muted loading' }, 'Loading…'));
  let view;
  try {
    switch (parts[0] || 'issues') {
      case 'issues':
        view = parts[1] ? await viewIssue(parts[1]) : await viewIssues(params);
        break;
      case 'events':
        view = await viewEvent(parts[1] || '');
        break;
      case 'search':
        view = await viewSearch(params);
        break;
      case 'releases':
        view = await viewReleases();
        break;
      case 'feedback':
        view = await viewFeedback();
        break;
      case 'alerts':
        view = await viewAlerts();
        break;
      case 'settings':
        view = await viewSettings();
        break;
      default:
        view = h('p', null, 'There is no such page. ', link('#/issues', 'Go to the issues.'));
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      session.signOut();
      flash(`Signed out: ${e.message}`);
      return render();
    }
    view = h('div', { class: 'failure' }, h('h2', null, 'This page could not be loaded'), h('p', null, e.message));
  }
  if (seq === renderSeq) main.replaceChildren(view);
}

function setChrome(signedIn, current) {
  $('#nav').hidden = !signedIn;
  $('#session').hidden = !signedIn;
  for (const a of document.querySelectorAll('#nav a[data-view]')) {
    a.classList.toggle('current', a.dataset.view === current || (current === 'events' && a.dataset.view === 'issues'));
  }
}

/** The projects the key reaches, as last listed. */
let knownProjects = [];

async function loadProjects() {
  const select = $('#project');
  let projects = [];
  try {
    projects = (await api('/v1/projects/list', { key: session.key })).projects || [];
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    projects = [];
  }
  // Without a choice, requests go to the key's own project (no X-Faultline-Project header).
  select.replaceChildren(h('option', { value: '' }, "this key's project"), ...projects.map((p) => h('option', { value: p.id }, p.name)));
  knownProjects = projects;
  if (!projects.some((p) => p.id === session.project)) session.project = '';
  if (session.project) select.value = session.project;
  select.parentElement.hidden = projects.length < 2;
}

// ---------- sign in ----------

function viewSignIn() {
  const input = h('input', { type: 'password', name: 'key', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'fl_…' });
  const remember = h('input', { type: 'checkbox', name: 'remember' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { class: 'card signin', onsubmit: (ev) => signIn(ev, input, remember, error) },
    h('h1', null, 'Sign in'),
    h('p', null, 'Use an API key with the read scope (write to triage). The first start of the server printed the owner key and saved it to ', h('code', null, '<data-dir>/admin.key'), '; owners and admins can make more keys (', h('code', null, 'POST /api/settings/api-keys'), ').'),
    h('label', null, 'API key', input),
    h('label', { class: 'inline' }, remember, 'Remember on this browser'),
    error,
    h('button', { type: 'submit' }, 'Sign in'),
  );
  return form;
}

async function signIn(ev, input, remember, error) {
  ev.preventDefault();
  const key = input.value.trim();
  error.textContent = '';
  try {
    await api('/v1/projects/list', { key });
  } catch (e) {
    error.textContent = e.status === 401 ? `This key was not accepted: ${e.message}` : e.message;
    return;
  }
  session.signIn(key, remember.checked);
  await start();
}

// ---------- issues ----------

const STATUSES = [
  ['unresolved', 'Unresolved'],
  ['resolved', 'Resolved'],
  ['ignored', 'Ignored'],
  ['', 'All'],
];
const SORTS = [
  ['last_seen_desc', 'Last seen'],
  ['first_seen_desc', 'First seen'],
  ['count_desc', 'Events'],
];

/** The team (for assigning issues); empty when the key may not see it. */
async function teamMembers() {
  try {
    return (await els('/api/settings/team')).members || [];
  } catch {
    return [];
  }
}

const memberLabel = (m) => (m.name && m.email ? `${m.name} <${m.email}>` : m.name || m.email);

/** The issue list's parameters, without the empty ones. */
const listParams = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== ''));

async function viewIssues(params) {
  const status = params.has('status') ? params.get('status') : 'unresolved';
  const sort = params.get('sort') || 'last_seen_desc';
  const q = params.get('q') || '';
  // Whose issues: a member's id, `none` (unassigned) or anyone's.
  const assignee = params.get('assignee') || '';
  // The issues a release brought (from the Releases page).
  const firstRelease = params.get('first_release') || '';
  const listing = (extra) => query({ status: status === 'all' ? '' : status, sort, q, assignee, first_release: firstRelease, limit: 50, ...extra });
  const [page, team] = await Promise.all([api(`/v1/errors/groups${listing({})}`), teamMembers()]);

  const selected = new Set();
  const bulkButtons = [];
  const body = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary' }, 'Load more');
  let cursor = page.next_cursor;

  const refreshBulk = () => {
    for (const b of bulkButtons) b.disabled = selected.size === 0;
    mergeButton.disabled = selected.size < 2;
    bulkAssign.disabled = selected.size === 0;
  };
  const addRows = (groups) => {
    for (const g of groups) {
      const box = h('input', {
        type: 'checkbox',
        'aria-label': 'select',
        onchange: () => {
          if (box.checked) selected.add(g.id);
          else selected.delete(g.id);
          refreshBulk();
        },
      });
      body.append(
        h(
          'tr',
          null,
          h('td', { class: 'check' }, box),
          h(
            'td',
            { class: 'title' },
            link(issueHref(g.id), g.title || '(no message)'),
            h('div', { class: 'muted small' }, g.culprit || ''),
          ),
          h('td', null, badge(g.level), g.regressed ? badge('regressed') : null, g.status !== 'unresolved' ? badge(g.status) : null),
          h('td', { class: 'small' }, g.workflow_stage),
          h('td', { class: 'small assignee' }, g.assignee ? g.assignee.name || g.assignee.email : '—'),
          h('td', { class: 'num' }, g.count.toLocaleString()),
          h('td', null, when(g.last_seen)),
          h('td', null, when(g.first_seen)),
        ),
      );
    }
  };
  addRows(page.groups);
  more.hidden = !cursor;
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const next = await api(`/v1/errors/groups${listing({ cursor })}`);
      addRows(next.groups);
      cursor = next.next_cursor;
      more.hidden = !cursor;
    } catch (e) {
      flash(e.message);
    }
    more.disabled = false;
  });

  const bulk = async (action) => {
    if (action === 'delete' && !confirm(`Delete ${selected.size} issue(s) and all their events?`)) return;
    try {
      const r = await api('/v1/errors/bulk', { method: 'POST', body: { error_group_ids: [...selected], action } });
      const failed = (r.failed || []).length;
      flash(`${action}: ${(r.succeeded || []).length} done${failed ? `, ${failed} failed` : ''}`, failed ? 'error' : 'ok');
    } catch (e) {
      flash(e.message);
    }
    render();
  };
  // The selected issues assigned to one member, or to nobody.
  const bulkAssign = h(
    'select',
    {
      name: 'bulk-assign',
      'aria-label': 'assign the selected issues',
      disabled: true,
      onchange: async () => {
        const who = bulkAssign.value;
        if (!who) return;
        try {
          const r = await api('/v1/errors/bulk', { method: 'POST', body: { error_group_ids: [...selected], action: 'assign', assignee: who === 'none' ? null : who } });
          const failed = (r.failed || []).length;
          flash(`assign: ${(r.succeeded || []).length} done${failed ? `, ${failed} failed` : ''}`, failed ? 'error' : 'ok');
        } catch (e) {
          flash(e.message);
        }
        render();
      },
    },
    h('option', { value: '' }, 'Assign to…'),
    h('option', { value: 'none' }, 'nobody'),
    team.map((m) => h('option', { value: m.id }, memberLabel(m))),
  );
  for (const [action, label] of [['resolve', 'Resolve'], ['unresolve', 'Unresolve'], ['ignore', 'Ignore'], ['delete', 'Delete']]) {
    bulkButtons.push(h('button', { type: 'button', class: action === 'delete' ? 'danger' : 'secondary', disabled: true, onclick: () => bulk(action) }, label));
  }
  // Merge: the selected issues become the one with the most events (two at least).
  const mergeButton = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      disabled: true,
      title: 'Merge the selected issues into the one with the most events',
      onclick: async () => {
        if (!confirm(`Merge ${selected.size} issues into one? Their events move to the issue with the most events.`)) return;
        try {
          const r = await api('/v1/errors/merge', { method: 'POST', body: { error_group_ids: [...selected] } });
          flash(`Merged ${r.merged_error_group_ids.length + 1} issues into one.`, 'ok');
        } catch (e) {
          flash(e.message);
        }
        render();
      },
    },
    'Merge',
  );

  const tabs = h(
    'nav',
    { class: 'tabs' },
    STATUSES.map(([value, label]) =>
      link(`#/issues${query({ status: value === '' ? 'all' : value, sort, q, assignee, first_release: firstRelease })}`, label),
    ),
  );
  for (const [i, a] of [...tabs.children].entries()) {
    const value = STATUSES[i][0];
    if (value === status || (value === '' && status === 'all')) a.classList.add('current');
  }
  const sortSelect = h(
    'select',
    { 'aria-label': 'sort', onchange: () => go(['issues'], listParams({ status, sort: sortSelect.value, q, assignee, first_release: firstRelease })) },
    SORTS.map(([v, label]) => h('option', { value: v }, label)),
  );
  sortSelect.value = sort;
  const assigneeSelect = h(
    'select',
    { name: 'assignee-filter', 'aria-label': 'assigned to', onchange: () => go(['issues'], listParams({ status, sort, q, assignee: assigneeSelect.value, first_release: firstRelease })) },
    h('option', { value: '' }, 'anyone'),
    h('option', { value: 'none' }, 'nobody'),
    team.map((m) => h('option', { value: m.id }, memberLabel(m))),
  );
  assigneeSelect.value = assignee;
  const search = h('input', { type: 'search', name: 'q', value: q, placeholder: 'words, is:unresolved, !assigned:me, level:[error,fatal], times_seen:>10, age:-24h, browser:Chrome', 'aria-label': 'search issues' });
  const searchForm = h(
    'form',
    { class: 'inline-form', onsubmit: (ev) => { ev.preventDefault(); go(['issues'], listParams({ status, sort, q: search.value.trim(), assignee, first_release: firstRelease })); } },
    search,
  );

  return h(
    'section',
    null,
    h('div', { class: 'toolbar' }, h('h1', null, 'Issues'), tabs, h('label', { class: 'inline' }, 'Sort by ', sortSelect), h('label', { class: 'inline' }, 'Assigned to ', assigneeSelect), searchForm),
    firstRelease
      ? h('p', { class: 'first-release' }, 'First seen in ', h('code', null, firstRelease), ' · ', link(`#/issues${query({ status, sort, q, assignee })}`, 'all releases'))
      : null,
    h('div', { class: 'toolbar' }, bulkButtons, mergeButton, bulkAssign),
    page.groups.length === 0
      ? h('p', { class: 'empty' }, q || assignee || firstRelease ? 'No issue matches.' : status === 'unresolved' ? 'No unresolved issues. Errors sent to this project show up here.' : 'No issues here.')
      : h(
          'table',
          { class: 'list' },
          h('thead', null, h('tr', null, h('th'), h('th', null, 'Issue'), h('th', null, 'Level'), h('th', null, 'Stage'), h('th', null, 'Assignee'), h('th', { class: 'num' }, 'Events'), h('th', null, 'Last seen'), h('th', null, 'First seen'))),
          body,
        ),
    more,
  );
}

const STAGES = ['NEW', 'VERIFYING', 'CANNOT_REPRODUCE', 'PENDING_FIX', 'FIXING', 'FIXED', 'VERIFIED', 'DEPLOYED', 'FIX_FAILED'];

// What an activity entry says happened, after who did it.
// A snooze's window in words: `in an hour`, `in 90 minutes`.
function within(minutes) {
  const named = { 1: 'in a minute', 60: 'in an hour', 1440: 'in a day', 10080: 'in a week' }[minutes];
  return named || `in ${minutes} minutes`;
}

function describeActivity(a) {
  const d = a.data || {};
  switch (a.type) {
    case 'first_seen':
      return 'saw the first event';
    case 'set_resolved':
      return 'resolved the issue';
    case 'set_resolved_in_release':
      return `resolved the issue in the next release after ${d.release}`;
    case 'set_unresolved':
      if (d.snooze_end === 'count_reached') return 'brought the issue back: it received the events it was ignored until';
      if (d.snooze_end === 'time_passed') return 'brought the issue back: the time it was ignored for passed';
      if (d.snooze_end === 'user_count_reached') return 'brought the issue back: it affected the users it was ignored until';
      if (d.snooze_end === 'escalating') return 'brought the issue back: it is escalating';
      return 'reopened the issue';
    case 'set_ignored': {
      const until = [
        d.ignore_duration ? `for ${d.ignore_duration} minutes` : null,
        d.until_escalating ? `until escalating (${d.ignore_count} events ${within(d.ignore_window)})` : null,
        d.ignore_count && d.ignore_window && !d.until_escalating ? `until it occurs ${d.ignore_count} times ${within(d.ignore_window)}` : null,
        d.ignore_count && !d.ignore_window ? `until ${d.ignore_count} more events` : null,
        d.ignore_user_count && d.ignore_user_window ? `until it affects ${d.ignore_user_count} users ${within(d.ignore_user_window)}` : null,
        d.ignore_user_count && !d.ignore_user_window ? `until it affects ${d.ignore_user_count} more users` : null,
      ].filter(Boolean);
      return `ignored the issue${until.length ? ` ${until.join(' or ')}` : ''}`;
    }
    case 'set_regression':
      return `reopened the issue as a regression: a new event${d.release ? ` of ${d.release}` : ''} arrived`;
    case 'assigned':
      return `assigned the issue to ${d.assignee.name || d.assignee.email}`;
    case 'unassigned':
      return 'unassigned the issue';
    case 'merge':
      return `merged ${d.merged_group_ids.length} other issue${d.merged_group_ids.length === 1 ? '' : 's'} into this one (${d.events} events)`;
    case 'unmerge_source':
      return `moved ${d.hashes.length} grouping key${d.hashes.length === 1 ? '' : 's'} and ${d.events} event${d.events === 1 ? '' : 's'} to a new issue`;
    case 'unmerge_destination':
      return `made this issue from ${d.hashes.length} grouping key${d.hashes.length === 1 ? '' : 's'} and ${d.events} event${d.events === 1 ? '' : 's'} of another`;
    case 'workflow':
      return `moved the issue from ${d.from} to ${d.to}`;
    default:
      return a.type;
  }
}

/** One user report: what was written, by whom, when, and the event (and issue) it is about. */
function feedbackItem(f, { withIssue }) {
  return h(
    'li',
    { class: 'note' },
    h('p', { class: 'comment-text' }, f.comments),
    h(
      'div',
      { class: 'muted small' },
      h('span', { class: 'who' }, [f.name, f.email].filter(Boolean).join(' · ') || 'anonymous'),
      ' · ',
      when(f.created_at),
      f.url ? [' · ', h('span', { class: 'url' }, f.url)] : null,
      f.stored_event_id ? [' · ', link(eventHref(f.stored_event_id), 'event')] : null,
      withIssue && f.error_group_id ? [' · ', link(`#/issues/${encodeURIComponent(f.error_group_id)}`, 'issue')] : null,
    ),
  );
}

async function viewFeedback() {
  const first = await api('/v1/errors/feedback?limit=50');
  const list = h('ul', { class: 'feedback activity' }, first.feedback.map((f) => feedbackItem(f, { withIssue: true })));
  const more = h('button', { type: 'button', class: 'secondary', hidden: !first.next_cursor }, 'Load more');
  let cursor = first.next_cursor;
  more.addEventListener('click', async () => {
    try {
      const next = await api(`/v1/errors/feedback${query({ limit: 50, cursor })}`);
      list.append(...next.feedback.map((f) => feedbackItem(f, { withIssue: true })));
      cursor = next.next_cursor;
      more.hidden = !cursor;
    } catch (e) {
      flash(e.message);
    }
  });
  return h(
    'section',
    null,
    h('h1', null, 'User feedback'),
    h('p', { class: 'muted' }, 'What users wrote about errors, newest first: Sentry SDKs\' feedback widget and crash-report dialog, and POST /v1/errors/feedback. An alert rule on user_feedback tells the team when it comes.'),
    first.feedback.length ? [list, more] : h('p', { class: 'empty' }, 'No feedback yet.'),
  );
}

async function viewIssue(id) {
  const path = encodeURIComponent(id);
  const [g, latest, team, history, feedback] = await Promise.all([
    api(`/v1/errors/group_detail/${path}`),
    api(`/v1/errors/events/${path}?limit=20`),
    teamMembers(),
    api(`/v1/errors/activity/${path}?limit=100`),
    api(`/v1/errors/feedback${query({ error_group_id: id, limit: 20 })}`),
  ]);

  const act = async (action, inNextRelease = false) => {
    try {
      if (action === 'delete') {
        if (!confirm('Delete this issue and all its events?')) return;
        await api(`/v1/errors/delete/${path}`, { method: 'DELETE' });
        flash('The issue and its events were deleted.', 'ok');
        go(['issues']);
        return;
      }
      // How long an ignore lasts: `d:<minutes>`, `c:<events>`, `u:<users>`, `e` (until escalating); empty is until changed.
      // A third part is a window in minutes: `c:100:60` is 100 events within an hour.
      const [kind, n, w] = action === 'ignore' ? snooze.value.split(':') : [];
      const field = { d: 'ignore_duration', c: 'ignore_count', u: 'ignore_user_count' }[kind];
      const windowField = { c: 'ignore_window', u: 'ignore_user_window' }[kind];
      const body = inNextRelease
        ? { in_next_release: true }
        : kind === 'e'
          ? { until_escalating: true }
          : field
          ? { [field]: Number(n), ...(w ? { [windowField]: Number(w) } : {}) }
          : undefined;
      const done = await api(`/v1/errors/${action}/${path}`, { method: 'POST', body });
      flash(inNextRelease ? `Issue resolved in the next release after ${done.resolved_in_release}.` : `Issue ${action === 'unresolve' ? 'reopened' : action + 'd'}.`, 'ok');
    } catch (e) {
      flash(e.message);
    }
    render();
  };
  const snooze = h(
    'select',
    { 'aria-label': 'ignore for' },
    [
      ['', 'until changed'],
      ['e', 'until escalating'],
      ['d:30', 'for 30 minutes'],
      ['d:120', 'for 2 hours'],
      ['d:1440', 'for 24 hours'],
      ['d:10080', 'for 7 days'],
      ['c:10', 'until 10 more events'],
      ['c:100', 'until 100 more events'],
      ['c:1000', 'until 1000 more events'],
      ['u:10', 'until it affects 10 more users'],
      ['u:100', 'until it affects 100 more users'],
      ['u:1000', 'until it affects 1000 more users'],
      ['c:10:60', 'until it occurs 10 times in an hour'],
      ['c:100:60', 'until it occurs 100 times in an hour'],
      ['c:1000:1440', 'until it occurs 1000 times in a day'],
      ['u:10:60', 'until it affects 10 users in an hour'],
      ['u:100:1440', 'until it affects 100 users in a day'],
    ].map(([value, label]) => h('option', { value }, label)),
  );
  const stage = h('select', { 'aria-label': 'workflow stage' }, STAGES.map((s) => h('option', { value: s }, s)));
  stage.value = g.workflow_stage;
  const moveStage = async () => {
    try {
      await api(`/api/v1/logs/${path}/status`, { method: 'PUT', body: { status: stage.value } });
      flash(`Moved to ${stage.value}.`, 'ok');
    } catch (e) {
      flash(e.message);
    }
    render();
  };

  // Assigned to a member of the team, or nobody.
  const assignee = h(
    'select',
    {
      name: 'assignee',
      'aria-label': 'assignee',
      onchange: async () => {
        try {
          const done = await api(`/v1/errors/assign/${path}`, { method: 'POST', body: { assignee: assignee.value || null } });
          flash(done.assignee ? `Assigned to ${memberLabel(done.assignee)}.` : 'Unassigned.', 'ok');
        } catch (e) {
          flash(e.message);
        }
        render();
      },
    },
    h('option', { value: '' }, 'nobody'),
    team.map((m) => h('option', { value: m.id }, memberLabel(m))),
  );
  if (g.assignee && !team.some((m) => m.id === g.assignee.id)) assignee.append(h('option', { value: g.assignee.id }, memberLabel(g.assignee)));
  assignee.value = g.assignee ? g.assignee.id : '';

  const actions = h(
    'div',
    { class: 'toolbar' },
    g.status === 'unresolved'
      ? [
          h('button', { type: 'button', onclick: () => act('resolve') }, 'Resolve'),
          // Sentry's "Resolved in next release", in the project's latest release: offered when
          // the issue's events name releases.
          g.last_release ? h('button', { type: 'button', class: 'secondary', title: 'Events of the project\'s latest release and older ones keep it resolved; a later release\'s reopen it.', onclick: () => act('resolve', true) }, 'Resolve in next release') : null,
          h('button', { type: 'button', class: 'secondary', onclick: () => act('ignore') }, 'Ignore'),
          snooze,
        ]
      : h('button', { type: 'button', onclick: () => act('unresolve') }, 'Reopen'),
    h('label', { class: 'inline' }, 'Assigned to ', assignee),
    h('label', { class: 'inline' }, 'Fix workflow ', stage),
    h('button', { type: 'button', class: 'secondary', onclick: moveStage }, 'Move'),
    h('button', { type: 'button', class: 'danger', onclick: () => act('delete') }, 'Delete'),
  );

  const peak = Math.max(1, ...g.trend.map((b) => b.count));
  const trend = h(
    'div',
    { class: 'trend', 'aria-label': 'events per hour, last 24 hours' },
    g.trend.map((b) =>
      h('span', { class: 'bar', title: `${new Date(b.hour).toLocaleString()}: ${b.count}` }, h('span', { class: `fill h${Math.round((b.count / peak) * 10)}` })),
    ),
  );

  const facts = h(
    'dl',
    { class: 'facts' },
    h('dt', null, 'Events'), h('dd', null, g.count.toLocaleString()),
    h('dt', null, 'Assignee'), h('dd', null, g.assignee ? memberLabel(g.assignee) : 'nobody'),
    g.ignored_until ? [h('dt', null, 'Ignored until'), h('dd', null, when(g.ignored_until))] : null,
    g.ignored_until_count != null ? [h('dt', null, 'Ignored until'), h('dd', null, `${g.ignored_until_count.toLocaleString()} events`)] : null,
    g.ignored_until_user_count != null ? [h('dt', null, 'Ignored until'), h('dd', null, `${g.ignored_until_user_count.toLocaleString()} users affected`)] : null,
    g.ignored_until_rate ? [h('dt', null, 'Ignored until'), h('dd', null, `${g.ignored_until_escalating ? 'escalating: ' : ''}${g.ignored_until_rate.count.toLocaleString()} events ${within(g.ignored_until_rate.window)}`)] : null,
    g.ignored_until_user_rate ? [h('dt', null, 'Ignored until'), h('dd', null, `${g.ignored_until_user_rate.count.toLocaleString()} users ${within(g.ignored_until_user_rate.window)}`)] : null,
    g.resolved_in_release ? [h('dt', null, 'Resolved in'), h('dd', null, `the release after ${g.resolved_in_release}`)] : null,
    g.last_release ? [h('dt', null, 'Last release'), h('dd', null, g.last_release)] : null,
    h('dt', null, 'Users'), h('dd', null, g.users_affected.toLocaleString()),
    h('dt', null, 'First seen'), h('dd', null, when(g.first_seen)),
    h('dt', null, 'Last seen'), h('dd', null, when(g.last_seen)),
    h('dt', null, 'Releases'), h('dd', null, g.releases.join(', ') || '—'),
    h('dt', null, 'Environments'), h('dd', null, g.environments.join(', ') || '—'),
    h('dt', null, 'Fingerprint'), h('dd', null, h('code', null, g.fingerprint)),
  );

  const tags = g.top_tags.length
    ? h('table', { class: 'list compact' }, h('thead', null, h('tr', null, h('th', null, 'Tag'), h('th', null, 'Value'), h('th', { class: 'num' }, 'Events'))),
        h('tbody', null, g.top_tags.map((t) => h('tr', null, h('td', null, t.key), h('td', null, t.value), h('td', { class: 'num' }, t.count)))))
    : h('p', { class: 'muted' }, 'No tags.');

  const events = eventTable(latest.events, { withGroup: false });
  const more = h('button', { type: 'button', class: 'secondary', hidden: !latest.next_cursor }, 'Load more');
  let cursor = latest.next_cursor;
  more.addEventListener('click', async () => {
    try {
      const next = await api(`/v1/errors/events/${path}${query({ limit: 20, cursor })}`);
      events.tBodies[0].append(...eventRows(next.events, { withGroup: false }));
      cursor = next.next_cursor;
      more.hidden = !cursor;
    } catch (e) {
      flash(e.message);
    }
  });

  let newest = null;
  if (latest.events[0]) {
    try {
      newest = await api(`/v1/errors/get/${encodeURIComponent(latest.events[0].id)}`);
    } catch {
      newest = latest.events[0];
    }
  }

  // The issue's grouping keys (Sentry's "Merged issues"), read when opened: counting them reads
  // every stored event of the issue. The keys checked move, with their events, to a new issue.
  const keys = h('details', { class: 'grouping-keys' }, h('summary', null, 'Grouping keys'));
  keys.addEventListener('toggle', async () => {
    if (!keys.open || keys.dataset.loaded) return;
    keys.dataset.loaded = 'yes';
    try {
      const k = await api(`/v1/errors/hashes/${path}`);
      const boxes = k.hashes.map((x) => h('input', { type: 'checkbox', name: 'unmerge', value: x.hash, 'aria-label': `move key ${x.hash}` }));
      const unmerge = h('button', { type: 'button', class: 'secondary', disabled: true, title: 'Move the checked keys and their events to a new issue; at least one key stays.' }, 'Unmerge');
      const sync = () => {
        const n = boxes.filter((b) => b.checked).length;
        unmerge.disabled = n === 0 || n === boxes.length;
      };
      for (const b of boxes) b.addEventListener('change', sync);
      unmerge.addEventListener('click', async () => {
        try {
          const done = await api(`/v1/errors/unmerge/${path}`, { method: 'POST', body: { hashes: boxes.filter((b) => b.checked).map((b) => b.value) } });
          flash(`Moved ${done.moved_events} event${done.moved_events === 1 ? '' : 's'} to a new issue: ${done.new_error_group.title}.`, 'ok');
        } catch (e) {
          flash(e.message);
        }
        render();
      });
      keys.append(
        h('table', { class: 'list compact keys' },
          h('thead', null, h('tr', null, h('th', null, ''), h('th', null, 'Key'), h('th', null, 'Kind'), h('th', { class: 'num' }, 'Events'), h('th', null, 'Latest event'))),
          h('tbody', null, k.hashes.map((x, i) => h('tr', null,
            h('td', null, boxes[i]),
            h('td', null, h('code', null, x.hash), x.primary ? [' ', badge('primary')] : null),
            h('td', null, x.kind || '—'),
            h('td', { class: 'num' }, x.events.toLocaleString()),
            h('td', { class: 'title' }, x.latest_event ? link(eventHref(x.latest_event.id), x.latest_event.message || '(no message)') : '—'),
          )))),
        k.other_events ? h('p', { class: 'muted small' }, `${k.other_events.toLocaleString()} events came by none of these keys; they stay with the issue.`) : null,
        h('div', { class: 'toolbar' }, unmerge),
      );
    } catch (e) {
      flash(e.message);
    }
  });

  // The issue's activity, newest first: the team's comments and what was done to it, with a
  // box to add a comment.
  const removeComment = async (c) => {
    if (!confirm('Delete this comment?')) return;
    try {
      await api(`/v1/errors/comments/${path}/${encodeURIComponent(c.id)}`, { method: 'DELETE' });
      flash('Comment deleted.', 'ok');
    } catch (e) {
      flash(e.message);
    }
    render();
  };
  // Its author edits a comment in place.
  const editComment = (a, li) => {
    const box = h('textarea', { name: 'comment-edit', rows: 3, maxlength: 10000, 'aria-label': 'edit comment' });
    box.value = a.data.text;
    const form = h(
      'form',
      {
        class: 'edit-comment',
        onsubmit: async (ev) => {
          ev.preventDefault();
          try {
            await api(`/v1/errors/comments/${path}/${encodeURIComponent(a.id)}`, { method: 'PUT', body: { text: box.value } });
            flash('Comment edited.', 'ok');
            render();
          } catch (e) {
            flash(e.message);
          }
        },
      },
      box,
      h('button', { type: 'submit' }, 'Save'),
    );
    li.querySelector('.comment-text').replaceWith(form);
  };
  // A comment, with its author's edit and delete; any other entry, as a sentence.
  const note = (a) => {
    const li = h(
      'li',
      { class: 'note' },
      h(
        'div',
        { class: 'muted small' },
        h('strong', null, a.actor),
        ` · ${when(a.created_at)} `,
        h('button', { type: 'button', class: 'link edit', title: 'Edit this comment', onclick: () => editComment(a, li) }, 'edit'),
        ' ',
        h('button', { type: 'button', class: 'link delete', title: 'Delete this comment', onclick: () => removeComment(a) }, 'delete'),
      ),
      h('p', { class: 'comment-text' }, a.data.text),
    );
    return li;
  };
  const change = (a) => h('li', { class: 'change' }, h('strong', null, a.actor ?? 'Faultline'), h('span', { class: 'what' }, ` ${describeActivity(a)}`), h('span', { class: 'muted small' }, ` · ${when(a.created_at)}`));
  const activity = h('ul', { class: 'activity' }, history.activity.map((a) => (a.type === 'note' ? note(a) : change(a))));
  const commentBox = h('textarea', { name: 'comment', rows: 3, maxlength: 10000, placeholder: 'What do you know about this issue?', 'aria-label': 'comment' });
  const commentForm = h(
    'form',
    {
      class: 'new-comment',
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          await api(`/v1/errors/comments/${path}`, { method: 'POST', body: { text: commentBox.value } });
          flash('Comment added.', 'ok');
          render();
        } catch (e) {
          flash(e.message);
        }
      },
    },
    commentBox,
    h('button', { type: 'submit' }, 'Comment'),
  );

  return h(
    'section',
    null,
    h('p', null, link('#/issues', '← Issues')),
    h('h1', { class: 'issue-title' }, g.title || '(no message)'),
    h('p', { class: 'muted' }, g.culprit || ''),
    h('p', null, badge(g.status), badge(g.level), g.regressed ? badge('regressed') : null, badge(g.workflow_stage, 'stage')),
    actions,
    h('div', { class: 'columns' }, h('div', null, h('h2', null, 'Last 24 hours'), trend, h('h2', null, 'Tags'), tags), h('div', null, facts)),
    keys,
    // What users wrote about its events (Sentry's user feedback), newest first.
    feedback.feedback.length
      ? [
          h('h2', null, 'User feedback'),
          h(
            'ul',
            { class: 'feedback activity' },
            feedback.feedback.map((f) => feedbackItem(f, { withIssue: false })),
          ),
        ]
      : null,
    h('h2', null, 'Activity'),
    commentForm,
    activity,
    h('h2', null, 'Latest event'),
    newest ? eventDetail(newest) : h('p', { class: 'muted' }, 'No events are kept for this issue (retention may have removed them).'),
    h('h2', null, 'Events'),
    events,
    more,
  );
}

// ---------- events ----------

function eventRows(list, { withGroup }) {
  return list.map((e) =>
    h(
      'tr',
      null,
      h('td', { class: 'title' }, link(eventHref(e.id), e.message || '(no message)')),
      withGroup ? h('td', null, link(issueHref(e.group_id), 'issue')) : null,
      h('td', null, badge(e.level)),
      h('td', null, e.environment || '—'),
      h('td', null, e.release || '—'),
      h('td', null, when(e.timestamp)),
    ),
  );
}

function eventTable(list, { withGroup }) {
  return h(
    'table',
    { class: 'list' },
    h('thead', null, h('tr', null, h('th', null, 'Event'), withGroup ? h('th', null, 'Issue') : null, h('th', null, 'Level'), h('th', null, 'Environment'), h('th', null, 'Release'), h('th', null, 'When'))),
    h('tbody', null, eventRows(list, { withGroup })),
  );
}

function frameView(f) {
  const where = [f.module || f.filename || '?', f.function ? ` in ${f.function}` : '', f.lineno ? ` at line ${f.lineno}${f.colno ? `:${f.colno}` : ''}` : ''].join('');
  // A frame a source map placed: where it was in the minified file, as sent.
  const m = f.minified;
  const minified = m ? h('div', { class: 'small minified' }, `minified: ${m.filename}${m.function ? ` in ${m.function}` : ''}:${m.lineno}:${m.colno}`) : null;
  return h('li', { class: f.in_app ? 'frame in-app' : 'frame' }, h('div', { class: 'where' }, where), minified, f.context_line ? h('pre', { class: 'context' }, f.context_line) : null);
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const scalar = (v) => (isObject(v) || Array.isArray(v) ? JSON.stringify(v) : String(v));

function exceptionView(ex) {
  const out = [h('h3', null, ex.type || 'Exception', ex.value ? `: ${ex.value}` : '', ex.mechanism ? h('span', { class: 'muted small' }, ` (${ex.mechanism})`) : null)];
  if (ex.frames && ex.frames.length) {
    // Most recent call first, as Sentry shows them; frames outside the application are dimmed.
    out.push(h('ol', { class: 'frames', reversed: true }, [...ex.frames].reverse().map(frameView)));
  } else if (ex.raw_stacktrace) {
    out.push(h('pre', { class: 'stack' }, ex.raw_stacktrace));
  }
  return h('div', { class: 'exception' }, out);
}

/** Keys and values of an object; nested values as compact JSON. */
function kv(obj) {
  return h('dl', { class: 'facts kv' }, Object.entries(obj).map(([k, v]) => [h('dt', null, k), h('dd', null, scalar(v))]));
}

/** Sentry breadcrumbs: a time (epoch seconds or RFC 3339), category, level, message or data. */
function breadcrumbsView(list) {
  const time = (t) => {
    const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
    return Number.isNaN(d.getTime()) ? String(t || '') : d.toISOString().replace('T', ' ').replace('Z', '');
  };
  return h(
    'table',
    { class: 'list compact crumbs' },
    h('thead', null, h('tr', null, h('th', null, 'Time (UTC)'), h('th', null, 'Category'), h('th', null, 'Level'), h('th', null, 'Message'))),
    h('tbody', null, list.filter(isObject).map((c) =>
      h('tr', null, h('td', { class: 'small' }, time(c.timestamp)), h('td', null, c.category || c.type || ''), h('td', null, c.level || ''),
        h('td', null, c.message ? String(c.message) : '', c.data ? h('code', { class: 'small' }, ` ${JSON.stringify(c.data)}`) : null)))),
  );
}

function requestView(r) {
  const out = [h('pre', { class: 'message' }, `${r.method || ''} ${r.url || ''}${r.query_string ? `?${typeof r.query_string === 'string' ? r.query_string : JSON.stringify(r.query_string)}` : ''}`)];
  if (isObject(r.headers)) out.push(kv(r.headers));
  else if (Array.isArray(r.headers)) out.push(kv(Object.fromEntries(r.headers.filter((p) => Array.isArray(p) && p.length === 2))));
  if (r.data !== undefined && r.data !== null) out.push(h('pre', { class: 'payload' }, typeof r.data === 'string' ? r.data : JSON.stringify(r.data, null, 2)));
  return h('div', null, out);
}

function eventDetail(e) {
  const parts = [];
  parts.push(
    h(
      'dl',
      { class: 'facts' },
      h('dt', null, 'Event'), h('dd', null, link(eventHref(e.id), h('code', null, e.id))),
      h('dt', null, 'When'), h('dd', null, when(e.timestamp), h('span', { class: 'muted small' }, ` (received ${new Date(e.received_at).toLocaleString()})`)),
      h('dt', null, 'Level'), h('dd', null, badge(e.level)),
      h('dt', null, 'Environment'), h('dd', null, e.environment || '—'),
      h('dt', null, 'Release'), h('dd', null, e.release || '—'),
      h('dt', null, 'User'), h('dd', null, e.user_id || '—'),
      e.code ? [h('dt', null, 'Code'), h('dd', null, h('code', null, e.code))] : null,
    ),
  );
  if (e.message) parts.push(h('pre', { class: 'message' }, e.message));
  const ex = e.exception;
  if (ex) {
    parts.push(exceptionView(ex));
    // A chain is stored oldest first; shown, like the main one, newest first.
    for (const c of [...(ex.chained || [])].reverse()) {
      parts.push(h('p', { class: 'muted small chain' }, 'raised while handling:'), exceptionView(c));
    }
  }
  const payload = e.payload && typeof e.payload === 'object' ? e.payload : {};
  const crumbs = Array.isArray(payload.breadcrumbs) ? payload.breadcrumbs : payload.breadcrumbs && payload.breadcrumbs.values;
  if (Array.isArray(crumbs) && crumbs.length) parts.push(h('h3', null, 'Breadcrumbs'), breadcrumbsView(crumbs));
  if (isObject(payload.request)) parts.push(h('h3', null, 'Request'), requestView(payload.request));
  if (isObject(payload.user)) parts.push(h('h3', null, 'User'), kv(payload.user));
  if (isObject(payload.contexts)) {
    for (const [name, ctx] of Object.entries(payload.contexts)) {
      parts.push(h('h3', null, `Context: ${name}`), isObject(ctx) ? kv(ctx) : h('pre', null, JSON.stringify(ctx)));
    }
  }
  if (isObject(payload.extra) && Object.keys(payload.extra).length) parts.push(h('h3', null, 'Extra'), kv(payload.extra));
  if (isObject(payload.sdk)) parts.push(h('p', { class: 'muted small' }, `Sent by ${payload.sdk.name || 'an SDK'} ${payload.sdk.version || ''}`));
  const tags = Object.entries(e.tags || {});
  if (tags.length) {
    parts.push(h('h3', null, 'Tags'), h('ul', { class: 'tags' }, tags.map(([k, v]) => h('li', null, h('span', { class: 'k' }, k), h('span', { class: 'v' }, v)))));
  }
  if (e.grouping) {
    parts.push(
      h('details', null, h('summary', null, `Grouping (version ${e.grouping.version}, by ${e.grouping.source})`),
        h('ul', null, (e.grouping.variants || []).map((v) => h('li', null, h('strong', null, v.kind), ` ${v.hash}`, v.matches_group ? ' — matches this issue' : '', h('ul', null, v.components.map((c) => h('li', null, h('code', null, c)))))))),
    );
  }
  if (e.payload !== undefined) {
    parts.push(h('details', null, h('summary', null, 'Payload as received (after scrubbing)'), h('pre', { class: 'payload' }, JSON.stringify(e.payload, null, 2))));
  }
  return h('div', { class: 'event card' }, parts);
}

async function viewEvent(id) {
  const e = await api(`/v1/errors/get/${encodeURIComponent(id)}`);
  return h('section', null, h('p', null, link(issueHref(e.group_id), '← Issue')), h('h1', null, e.message || '(no message)'), eventDetail(e));
}

async function viewSearch(params) {
  const q = params.get('q') || '';
  const level = params.get('level') || '';
  const input = h('input', { type: 'search', name: 'q', value: q, placeholder: 'words in the message, type or stack', autofocus: true });
  const levelSelect = h('select', { name: 'level', 'aria-label': 'level' }, ['', 'debug', 'info', 'warning', 'error', 'fatal'].map((l) => h('option', { value: l }, l || 'any level')));
  levelSelect.value = level;
  const form = h(
    'form',
    { class: 'toolbar', onsubmit: (ev) => { ev.preventDefault(); go(['search'], new URLSearchParams(Object.entries({ q: input.value.trim(), level: levelSelect.value }).filter(([, v]) => v))); } },
    input,
    levelSelect,
    h('button', { type: 'submit' }, 'Search'),
  );
  const out = [h('h1', null, 'Search events'), form];
  if (q) {
    const page = await api(`/v1/errors/search${query({ q, level, limit: 50 })}`);
    if (!page.events.length) {
      out.push(h('p', { class: 'empty' }, 'No event matches.'));
    } else {
      const table = eventTable(page.events, { withGroup: true });
      let cursor = page.next_cursor;
      const more = h('button', { type: 'button', class: 'secondary' }, 'Load more');
      more.hidden = !cursor;
      more.addEventListener('click', async () => {
        more.disabled = true;
        try {
          const next = await api(`/v1/errors/search${query({ q, level, limit: 50, cursor })}`);
          table.tBodies[0].append(...eventRows(next.events, { withGroup: true }));
          cursor = next.next_cursor;
          more.hidden = !cursor;
        } catch (e) {
          flash(e.message);
        }
        more.disabled = false;
      });
      out.push(table, h('p', null, more));
    }
  }
  return h('section', null, out);
}

// ---------- releases ----------

/** The releases the project's events named, by when each was first seen, latest first. */
async function viewReleases() {
  const [{ releases }, debug] = await Promise.all([api('/v1/errors/releases?limit=200'), api('/v1/errors/debug-files?limit=100')]);
  // The files kept by debug id, one row a build (the newest files first).
  const builds = new Map();
  for (const f of debug.files) {
    if (!builds.has(f.debug_id)) builds.set(f.debug_id, []);
    builds.get(f.debug_id).push(f);
  }
  const latest = (files, field) => files.map((f) => f[field]).sort().pop();
  const forget = async (id) => {
    if (!confirm(`Delete the source map files of build ${id}? Its events are then shown minified.`)) return;
    try {
      const r = await api(`/v1/errors/debug-files/${encodeURIComponent(id)}`, { method: 'DELETE' });
      flash(`${r.deleted} file${r.deleted === 1 ? '' : 's'} of build ${id} deleted.`, 'ok');
    } catch (e) {
      flash(e.message);
    }
    render();
  };
  const debugTable = builds.size
    ? h(
        'table',
        { class: 'list debug-files' },
        h('thead', null, h('tr', null, h('th', null, 'Debug id'), h('th', null, 'Files'), h('th', { class: 'num' }, 'Bytes'), h('th', null, 'Uploaded'), h('th', null, 'Last used'), h('th', null, ''))),
        h(
          'tbody',
          null,
          [...builds].map(([id, files]) =>
            h(
              'tr',
              null,
              h('td', null, h('code', null, id)),
              h('td', { class: 'files' }, files.map((f) => f.name).sort().join(', ')),
              h('td', { class: 'num' }, files.reduce((n, f) => n + f.size, 0).toLocaleString()),
              h('td', null, when(latest(files, 'created_at'))),
              h('td', null, when(latest(files, 'last_used_at'))),
              h('td', null, h('button', { type: 'button', class: 'secondary', onclick: () => forget(id) }, 'Delete')),
            ),
          ),
        ),
      )
    : h('p', { class: 'empty debug-files' }, 'No source map uploaded by debug id. sentry-cli sourcemaps inject, then sourcemaps upload, puts them here.');
  return h(
    'section',
    null,
    h('h1', null, 'Releases'),
    h('p', { class: 'muted' }, 'Latest first, by when each was first seen. "Resolve in next release" compares two versions of one package (package@1.2.3) by version, any others by when each was first seen.'),
    releases.length
      ? h(
          'table',
          { class: 'list releases' },
          h('thead', null, h('tr', null, h('th', null, 'Release'), h('th', null, 'First seen'), h('th', { class: 'num' }, 'Events'), h('th', { class: 'num' }, 'Issues'), h('th', { class: 'num' }, 'New issues'))),
          h('tbody', null, releases.map((r) => h('tr', null, h('td', null, h('code', null, r.version)), h('td', null, when(r.first_seen)), h('td', { class: 'num' }, r.event_count.toLocaleString()), h('td', { class: 'num' }, r.issue_count.toLocaleString()), h('td', { class: 'num new-issues' }, r.new_issue_count ? link(`#/issues${query({ status: 'all', first_release: r.version })}`, r.new_issue_count.toLocaleString()) : '0')))),
        )
      : h('p', { class: 'empty' }, 'No release yet. Events that name one (Sentry SDKs: the release option) show up here.'),
    h('h2', null, 'Source maps by debug id'),
    h('p', { class: 'muted small' }, 'The builds whose maps place events by the debug ids their SDKs report, newest first. A file that places no event for the server\'s --source-map-days (90 by default) is deleted.'),
    debugTable,
    debug.next_cursor ? h('p', { class: 'muted small' }, 'Showing the newest 100 files.') : null,
  );
}

// ---------- alerts ----------

const INCIDENT_STATUSES = ['open', 'investigating', 'identified', 'monitoring', 'resolved'];

async function viewAlerts() {
  const [rules, incidents] = await Promise.all([els('/api/alerts/rules'), els('/api/alerts/incidents')]);
  const incidentRows = (incidents.incidents || []).map((i) => {
    const status = h('select', { 'aria-label': 'incident status' }, INCIDENT_STATUSES.map((s) => h('option', { value: s }, s)));
    status.value = i.status;
    status.addEventListener('change', async () => {
      try {
        await els(`/api/alerts/incidents/${encodeURIComponent(i.id)}`, { method: 'PUT', body: { status: status.value } });
        flash(`Incident ${status.value}.`, 'ok');
      } catch (e) {
        flash(e.message);
      }
      render();
    });
    return h('tr', null, h('td', { class: 'title' }, i.title, i.description ? h('pre', { class: 'small desc' }, i.description) : null), h('td', null, badge(i.severity)), h('td', null, status), h('td', null, when(i.created_at)), h('td', null, when(i.resolved_at)));
  });
  const ruleRows = (rules.rules || []).map((r) => {
    const path = `/api/alerts/rules/${encodeURIComponent(r.id)}`;
    const act = (label, cls, message, call) =>
      h('button', {
        type: 'button',
        class: cls,
        onclick: async () => {
          try {
            await call();
            flash(message, 'ok');
          } catch (e) {
            flash(e.message);
          }
          render();
        },
      }, label);
    // The condition as written may carry the threshold and window too; its first word is the metric.
    const metric = String(r.condition).trim().split(/\s+/)[0];
    return h(
      'tr',
      null,
      h('td', { class: 'title' }, r.name),
      h(
        'td',
        null,
        h('code', null, `${metric} > ${r.threshold} in ${r.time_window}`),
        // The rule's filters: only this environment, only this level and above.
        [r.environment, r.level && `level ≥ ${r.level}`, ...Object.entries(r.tags || {}).map(([k, v]) => `${k}=${v}`)].filter(Boolean).map((f) => h('span', { class: 'small filter' }, ` · ${f}`)),
      ),
      h('td', null, badge(r.severity)),
      h('td', null, r.enabled ? 'on' : 'off'),
      h('td', null, (r.notifications || []).join(', ') || '—'),
      h('td', null, when(r.last_triggered)),
      h(
        'td',
        { class: 'actions' },
        act(r.enabled ? 'Disable' : 'Enable', 'secondary', `Rule ${r.enabled ? 'disabled' : 'enabled'}.`, () => els(path, { method: 'PUT', body: { enabled: !r.enabled } })),
        ' ',
        act('Delete', 'danger', 'Rule deleted.', async () => {
          if (!window.confirm(`Delete the alert rule "${r.name}"?`)) throw new Error('Nothing deleted.');
          await api(path, { method: 'DELETE' });
        }),
      ),
    );
  });
  const field = (label, input) => h('label', null, label, input);
  const ruleName = h('input', { name: 'rule-name', required: 'required', maxlength: '200', placeholder: 'Checkout errors' });
  const ruleCondition = h('input', { name: 'rule-condition', required: 'required', placeholder: 'error_count > 10 in 5m', size: '28' });
  const ruleSeverity = h('select', { name: 'rule-severity' }, ['critical', 'high', 'medium', 'low'].map((s) => h('option', { value: s }, s)));
  ruleSeverity.value = 'medium';
  const ruleEnvironment = h('input', { name: 'rule-environment', maxlength: '200', placeholder: 'any', size: '12' });
  const ruleLevel = h('select', { name: 'rule-level' }, h('option', { value: '' }, 'any'), ['debug', 'info', 'warning', 'error', 'fatal'].map((l) => h('option', { value: l }, `${l} and above`)));
  const ruleTags = h('input', { name: 'rule-tags', placeholder: 'tier=enterprise, region=eu', size: '22' });
  const channels = ['webhook', 'slack', 'email'].map((c) => h('input', { type: 'checkbox', name: 'rule-channel', value: c }));
  // `key=value, key=value`: the tags every counted event must have (the server checks them).
  const tagsOf = (text) =>
    Object.fromEntries(
      text
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean)
        .map((t) => {
          const cut = t.indexOf('=');
          return cut < 0 ? [t, ''] : [t.slice(0, cut).trim(), t.slice(cut + 1).trim()];
        }),
    );
  const createRule = async (ev) => {
    ev.preventDefault();
    try {
      const r = await els('/api/alerts/rules', {
        method: 'POST',
        body: {
          name: ruleName.value,
          condition: ruleCondition.value,
          severity: ruleSeverity.value,
          environment: ruleEnvironment.value,
          level: ruleLevel.value,
          tags: tagsOf(ruleTags.value),
          notifications: channels.filter((c) => c.checked).map((c) => c.value),
        },
      });
      flash(`Rule "${r.name}" created.`, 'ok');
      render();
    } catch (e) {
      flash(e.message);
    }
  };
  const newRule = h(
    'form',
    { class: 'toolbar new-rule', onsubmit: createRule },
    field('Name', ruleName),
    field('Fires when', ruleCondition),
    field('Severity', ruleSeverity),
    field('Environment', ruleEnvironment),
    field('Level', ruleLevel),
    field('Tags', ruleTags),
    h('span', null, 'Notify ', channels.map((c) => h('label', { class: 'inline' }, c, c.value))),
    h('button', { type: 'submit' }, 'Create rule'),
  );
  return h(
    'section',
    null,
    h('h1', null, 'Incidents'),
    incidentRows.length
      ? h('table', { class: 'list' }, h('thead', null, h('tr', null, h('th', null, 'Incident'), h('th', null, 'Severity'), h('th', null, 'Status'), h('th', null, 'Opened'), h('th', null, 'Resolved'))), h('tbody', null, incidentRows))
      : h('p', { class: 'empty' }, 'No incidents.'),
    h('h1', null, 'Alert rules'),
    ruleRows.length
      ? h('table', { class: 'list rules' }, h('thead', null, h('tr', null, h('th', null, 'Rule'), h('th', null, 'Fires when'), h('th', null, 'Severity'), h('th', null, 'Enabled'), h('th', null, 'Notifies'), h('th', null, 'Last fired'), h('th', null, ''))), h('tbody', null, ruleRows))
      : h('p', { class: 'empty' }, 'No alert rules yet.'),
    h('h2', null, 'New rule'),
    h('p', { class: 'muted small' }, 'Conditions: error_count, new_issues, regressions, unignored, issue_events, issue_users or user_feedback, then > threshold in a window of 1m to 24h, e.g. new_issues > 0 in 1m. The channels are the project\'s integrations (see /docs).'),
    newRule,
  );
}

// ---------- settings ----------

async function viewSettings() {
  const [dsn, retention, policy, keys] = await Promise.all([
    api('/v1/settings/dsn'),
    api('/v1/errors/retention/get'),
    api('/v1/settings/policy'),
    // Listing keys needs the admin scope; a lesser key still sees the rest of the page.
    els('/api/settings/api-keys').catch((e) => {
      if (e.status === 403) return null;
      throw e;
    }),
  ]);
  const days = h('input', { type: 'number', min: '0', max: '36500', name: 'days', value: String(retention.days), 'aria-label': 'retention days' });
  const saveRetention = async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('/v1/errors/retention/set', {
        method: 'PUT',
        body: { days: Number(days.value), auto_export_before_cleanup: retention.auto_export_before_cleanup, export_destination: retention.export_destination },
      });
      flash(r.days === 0 ? 'Events are now kept forever.' : `Events are now kept ${r.days} days.`, 'ok');
    } catch (e) {
      flash(e.message);
    }
    render();
  };
  // Inbound filters (Sentry's): what Sentry SDKs send that the project drops, with what each
  // filter dropped lately. Saving puts the whole policy back with the filters changed.
  const FILTERS = [
    ['browser_extensions', 'Errors thrown by browser extensions'],
    ['localhost', 'Events from localhost'],
    ['web_crawlers', 'Events from web crawlers'],
  ];
  const inbound = policy.inbound_filters;
  const checks = FILTERS.map(([name]) => h('input', { type: 'checkbox', name: `filter-${name}`, checked: inbound[name] }));
  const patterns = (name, label) => {
    const box = h('textarea', { name: `filter-${name}`, rows: 3, placeholder: 'one glob pattern a line, such as *ResizeObserver loop*', 'aria-label': label });
    box.value = inbound[name].join('\n');
    return box;
  };
  // Sentry's legacy-browsers filter, all its parts at once; a stored choice of some parts is
  // kept as it is unless the box changes.
  const LEGACY = ['ie_pre_9', 'ie9', 'ie10', 'ie11', 'edge_pre_79', 'safari_pre_6', 'opera_pre_15', 'opera_mini_pre_8', 'android_pre_4'];
  const legacy = h('input', { type: 'checkbox', name: 'filter-legacy_browsers', checked: inbound.legacy_browsers.length > 0 });
  const legacyChoice = () => (legacy.checked === inbound.legacy_browsers.length > 0 ? inbound.legacy_browsers : legacy.checked ? LEGACY : []);
  const messages = patterns('error_messages', 'error messages to drop');
  const releases = patterns('releases', 'releases to drop');
  const lines = (box) => box.value.split('\n').map((l) => l.trim()).filter(Boolean);
  const dropped = (name) => h('span', { class: 'muted small' }, ` ${policy.filtered_last_30_days[name].toLocaleString()} dropped in 30 days`);
  const saveFilters = async (ev) => {
    ev.preventDefault();
    const rates = Object.fromEntries(Object.entries(policy.rate_limits).filter(([, v]) => v !== null));
    const filters = Object.fromEntries(FILTERS.map(([name], i) => [name, checks[i].checked]));
    try {
      await api('/v1/settings/policy', {
        method: 'PUT',
        body: {
          rate_limits: rates,
          scrub_fields: policy.scrub_fields,
          allowed_origins: policy.allowed_origins,
          inbound_filters: { ...filters, legacy_browsers: legacyChoice(), error_messages: lines(messages), releases: lines(releases) },
        },
      });
      flash('Inbound filters saved.', 'ok');
    } catch (e) {
      flash(e.message);
    }
    render();
  };

  return h(
    'section',
    null,
    h('h1', null, 'Settings'),
    h('h2', null, 'Sentry DSN'),
    h('p', null, 'Official Sentry SDKs send to this project unchanged with this DSN (its key may only send events):'),
    h('pre', { class: 'message dsn' }, dsn.dsn),
    h('pre', { class: 'message small' }, `sentry_sdk.init(dsn="${dsn.dsn}")\nSentry.init({ dsn: "${dsn.dsn}" });`),
    h('h2', null, 'Retention'),
    h(
      'form',
      { class: 'toolbar', onsubmit: saveRetention },
      h('label', { class: 'inline' }, 'Keep events for ', days, ' days (0: forever)'),
      h('button', { type: 'submit', class: 'secondary' }, 'Save'),
    ),
    h('p', { class: 'muted small' }, retention.last_cleanup ? ['Last cleanup ', when(retention.last_cleanup), `, ${retention.last_cleanup_deleted} events deleted.`] : 'No cleanup has run yet.'),
    h('h2', null, 'Inbound filters'),
    h('p', { class: 'muted small' }, 'Events from Sentry SDKs that these name are answered as usual but not kept.'),
    h(
      'form',
      { class: 'inbound-filters', onsubmit: saveFilters },
      FILTERS.map(([name, label], i) => h('p', null, h('label', { class: 'inline' }, checks[i], ` ${label}`), dropped(name))),
      h(
        'p',
        null,
        h('label', { class: 'inline' }, legacy, ' Events from legacy browsers (Internet Explorer, Edge before 79, Safari before 6, Opera before 15, Opera Mini before 8, Android before 4)'),
        dropped('legacy_browsers'),
      ),
      h('p', null, h('label', null, 'Error messages (Type: value or message) ', dropped('error_messages')), messages),
      h('p', null, h('label', null, 'Releases ', dropped('releases')), releases),
      h('button', { type: 'submit', class: 'secondary' }, 'Save filters'),
    ),
    h('h2', null, 'API keys'),
    keys === null ? h('p', { class: 'muted' }, 'Listing API keys needs a key with the admin scope.') : keyTable(keys.api_keys || []),
    keys === null ? null : newKeyForm(),
  );
}

/** The secret of the key made last, shown once on the next settings page and then forgotten. */
let madeKey = null;

function keyTable(list) {
  const revoke = (k) =>
    h('button', {
      type: 'button',
      class: 'danger',
      onclick: async () => {
        if (!window.confirm(`Revoke the key "${k.name}"? Whatever uses it is refused from now on.`)) return;
        try {
          await api(`/api/settings/api-keys/${encodeURIComponent(k.id)}`, { method: 'DELETE' });
          flash(`Key "${k.name}" revoked.`, 'ok');
        } catch (e) {
          flash(e.message);
        }
        render();
      },
    }, 'Revoke');
  const made = madeKey;
  madeKey = null;
  return [
    made
      ? h('div', { class: 'card made-key' }, h('p', null, `The new key "${made.name}". Copy it now: it is not shown again.`), h('pre', { class: 'message new-key' }, made.api_key))
      : null,
    h(
      'table',
      { class: 'list keys' },
      h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Key'), h('th', null, 'Scopes'), h('th', null, 'Project'), h('th', null, 'Last used'), h('th', null, 'Expires'), h('th', null, ''))),
      h('tbody', null, list.map((k) => h('tr', null, h('td', null, k.name), h('td', null, h('code', null, k.key_preview)), h('td', null, (k.permissions || []).join(', ')), h('td', null, k.project_id ? 'this one' : 'every'), h('td', null, when(k.last_used)), h('td', null, k.expires_at ? when(k.expires_at) : 'never'), h('td', null, revoke(k))))),
    ),
  ];
}

function newKeyForm() {
  const name = h('input', { name: 'key-name', required: 'required', maxlength: '200', placeholder: 'checkout-service' });
  const scopes = ['ingest', 'read', 'write', 'admin'].map((s) => h('input', { type: 'checkbox', name: 'key-scope', value: s, checked: s === 'ingest' }));
  // The project shown, when its id is known: the one picked, or the key's only one.
  const shown = session.project || (knownProjects.length === 1 ? knownProjects[0].id : '');
  const only = h('input', { type: 'checkbox', name: 'key-project-only', checked: Boolean(shown) });
  const create = async (ev) => {
    ev.preventDefault();
    try {
      madeKey = await els('/api/settings/api-keys', {
        method: 'POST',
        body: {
          name: name.value,
          permissions: scopes.filter((s) => s.checked).map((s) => s.value),
          // Without a project the key reaches what this key reaches, this project by default.
          project_id: only.checked && shown ? shown : null,
        },
      });
      flash(`Key "${madeKey.name}" created.`, 'ok');
      render();
    } catch (e) {
      flash(e.message);
    }
  };
  return h(
    'form',
    { class: 'toolbar new-key-form', onsubmit: create },
    h('label', null, 'New key', name),
    h('span', null, 'Scopes ', scopes.map((s) => h('label', { class: 'inline' }, s, s.value))),
    shown ? h('label', { class: 'inline' }, only, 'this project only') : null,
    h('button', { type: 'submit' }, 'Create key'),
  );
}

// ---------- start ----------

async function start() {
  if (session.key) {
    try {
      await loadProjects();
    } catch (e) {
      session.signOut();
      flash(`Signed out: ${e.message}`);
    }
  }
  await render();
}

$('#signout').addEventListener('click', () => {
  session.signOut();
  location.hash = '#/issues';
  render();
});
$('#project').addEventListener('change', (ev) => {
  session.project = ev.target.value;
  go(['issues']);
  render();
});
window.addEventListener('hashchange', render);
start();
