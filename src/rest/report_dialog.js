// Faultline's crash-report dialog: what `Sentry.showReportDialog()` loads from
// `<dsn host>/api/embed/error-page/?dsn=…&eventId=…` (its options in the query), shown over the
// page. The user's name, email and what happened are posted back to the same address, as a
// form, and stored as user feedback about the event. Closing it posts
// `__sentry_reportdialog_closed__` to the window, which calls the SDK's `onClose`.
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !script.src) return;
  var endpoint = script.src;
  var params = new URL(endpoint).searchParams;
  var opt = function (name, fallback) {
    var v = params.get(name);
    return v ? v : fallback;
  };
  var text = {
    title: opt('title', 'It looks like we\u2019re having issues.'),
    subtitle: opt('subtitle', 'Our team has been notified.'),
    subtitle2: opt('subtitle2', 'If you\u2019d like to help, tell us what happened below.'),
    labelName: opt('labelName', 'Name'),
    labelEmail: opt('labelEmail', 'Email'),
    labelComments: opt('labelComments', 'What happened?'),
    labelClose: opt('labelClose', 'Close'),
    labelSubmit: opt('labelSubmit', 'Submit Crash Report'),
    errorGeneric: opt('errorGeneric', 'An unknown error occurred while submitting your report. Please try again.'),
    errorFormEntry: opt('errorFormEntry', 'Some fields were invalid. Please correct the errors and try again.'),
    successMessage: opt('successMessage', 'Your feedback has been sent. Thank you!'),
  };

  var css =
    '.faultline-report{position:fixed;inset:0;z-index:2147483647;display:flex;align-items:center;justify-content:center;background:rgba(0,0,0,.45);font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328}' +
    '.faultline-report *{box-sizing:border-box}' +
    '.faultline-report .fl-box{background:#fff;border-radius:8px;box-shadow:0 10px 40px rgba(0,0,0,.3);width:min(520px,calc(100% - 32px));max-height:calc(100% - 32px);overflow:auto;padding:24px}' +
    '.faultline-report h2{margin:0 0 4px;font-size:20px}' +
    '.faultline-report p{margin:0 0 12px;color:#59636e}' +
    '.faultline-report label{display:block;margin:10px 0 4px;font-weight:600}' +
    '.faultline-report input,.faultline-report textarea{width:100%;padding:8px;border:1px solid #d1d9e0;border-radius:6px;font:inherit}' +
    '.faultline-report textarea{min-height:110px;resize:vertical}' +
    '.faultline-report .fl-actions{display:flex;gap:8px;justify-content:flex-end;margin-top:16px}' +
    '.faultline-report button{padding:8px 14px;border-radius:6px;border:1px solid #d1d9e0;background:#f6f8fa;font:inherit;cursor:pointer}' +
    '.faultline-report button[type=submit]{background:#1f6feb;border-color:#1f6feb;color:#fff}' +
    '.faultline-report .fl-error{color:#d1242f}' +
    '.faultline-report .fl-success{color:#1a7f37;font-weight:600}';

  var el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c) node.appendChild(c);
    });
    return node;
  };

  var style = el('style', { text: css });
  var field = function (id, label, input) {
    input.id = id;
    input.name = id.replace('fl-', '');
    return [el('label', { for: id, text: label }), input];
  };
  var name = el('input', { type: 'text', required: '', maxlength: '200', autocomplete: 'name' });
  var email = el('input', { type: 'email', required: '', maxlength: '200', autocomplete: 'email' });
  var comments = el('textarea', { required: '', maxlength: '10000' });
  name.value = opt('name', '');
  email.value = opt('email', '');
  var message = el('p', { class: 'fl-message', role: 'status' });
  var submit = el('button', { type: 'submit', text: text.labelSubmit });
  var close = el('button', { type: 'button', class: 'fl-close', text: text.labelClose });
  var form = el(
    'form',
    { novalidate: '' },
    [].concat(
      field('fl-name', text.labelName, name),
      field('fl-email', text.labelEmail, email),
      field('fl-comments', text.labelComments, comments),
      [message, el('div', { class: 'fl-actions' }, [close, submit])]
    )
  );
  var box = el('div', { class: 'fl-box', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'fl-title' }, [
    el('h2', { id: 'fl-title', text: text.title }),
    el('p', { text: text.subtitle + ' ' + text.subtitle2 }),
    form,
  ]);
  var root = el('div', { class: 'faultline-report' }, [style, box]);

  var closed = false;
  var shut = function () {
    if (closed) return;
    closed = true;
    document.removeEventListener('keydown', onKey);
    if (root.parentNode) root.parentNode.removeChild(root);
    window.postMessage('__sentry_reportdialog_closed__', '*');
  };
  var onKey = function (e) {
    if (e.key === 'Escape') shut();
  };
  var say = function (what, kind) {
    message.textContent = what;
    message.className = 'fl-message ' + kind;
  };

  close.addEventListener('click', shut);
  root.addEventListener('click', function (e) {
    if (e.target === root) shut();
  });
  document.addEventListener('keydown', onKey);
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var values = { name: name.value.trim(), email: email.value.trim(), comments: comments.value.trim() };
    if (!values.name || !values.email || !values.comments || email.value.indexOf('@') < 0) {
      say(text.errorFormEntry, 'fl-error');
      return;
    }
    say('', '');
    submit.disabled = true;
    var body = Object.keys(values)
      .map(function (k) {
        return encodeURIComponent(k) + '=' + encodeURIComponent(values[k]);
      })
      .join('&');
    var xhr = new XMLHttpRequest();
    xhr.open('POST', endpoint);
    xhr.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
    xhr.onload = function () {
      submit.disabled = false;
      if (xhr.status >= 200 && xhr.status < 300) {
        form.parentNode.replaceChild(
          el('div', null, [
            el('p', { class: 'fl-message fl-success', role: 'status', text: text.successMessage }),
            el('div', { class: 'fl-actions' }, [close]),
          ]),
          form
        );
      } else {
        say(xhr.status === 422 || xhr.status === 400 ? text.errorFormEntry : text.errorGeneric, 'fl-error');
      }
    };
    xhr.onerror = function () {
      submit.disabled = false;
      say(text.errorGeneric, 'fl-error');
    };
    xhr.send(body);
  });

  (document.body || document.documentElement).appendChild(root);
  (name.value && email.value ? comments : name).focus();
})();
